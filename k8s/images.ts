// Third-party images, each by digest from the committed images.lock.json at the repository root
// (contract of issue 10, decision 6): the one file the Dockerfiles and these manifests read, so both
// run the same bytes, refreshed by scripts/ci/pin-images.sh (`docker buildx imagetools inspect`).
// A reference is `name:tag@sha256:…`: the tag says what it is, the digest decides what is pulled
// (a tag alone can be moved under a running cluster; the digest cannot).
import fs from 'node:fs';
import { mirrorRepository, type Environment } from '../infra/environments.ts';

const LOCK_FILE = new URL('../images.lock.json', import.meta.url);

let lock: Record<string, string> | undefined;

/** The digest images.lock.json pins `name:tag` to; throws for an image it does not list. */
export function lockedDigest(nameAndTag: string): string {
  lock ??= JSON.parse(fs.readFileSync(LOCK_FILE, 'utf8')) as Record<string, string>;
  const digest = lock[nameAndTag];
  if (!digest || !/^sha256:[0-9a-f]{64}$/.test(digest)) {
    throw new Error(`images.lock.json has no sha256 digest for ${nameAndTag} (add it with scripts/ci/pin-images.sh)`);
  }
  return digest;
}

/** `name:tag@sha256:…` of an image pulled from where its name says. */
export function pinned(nameAndTag: string): string {
  return `${nameAndTag}@${lockedDigest(nameAndTag)}`;
}

/**
 * The environment's Artifact Registry remote repository (infra/ makes it, upstream Docker Hub): the
 * nodes pull Docker Hub's images through it, in the region, with the nodes' own identity, without
 * Docker Hub's pull limits or its availability on the path of a rescheduled broker. Docker Hub's
 * official images are under `library/`.
 */
export function mirroredFromDockerHub(env: Environment, nameAndTag: string): string {
  return `${mirrorRepository(env)}/library/${pinned(nameAndTag)}`;
}
