// The Kubernetes manifests of every environment, synthesized once per test process (through
// synthK8s, as `npm run synth` does) into a temporary folder and parsed back from the YAML files,
// with lookups that tests assert on.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Yaml } from 'cdk8s';
import { environments, type Environment } from '../../infra/environments.ts';
import { synthK8s } from '../../k8s/main.ts';

/** One API object as synthesized. */
export type Manifest = Record<string, any> & { apiVersion: string; kind: string; metadata: Record<string, any> & { name: string } };

let synthesized: { dir: string; files: string[] } | undefined;

/** The folder synthK8s wrote into (removed when the process exits) and the files it reports. */
export function synth(): { dir: string; files: string[] } {
  if (!synthesized) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'itemgen-k8s-'));
    process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
    synthesized = { dir, files: synthK8s(dir) };
  }
  return synthesized;
}

const parsed = new Map<string, Manifest[]>();

/** Every object of one environment, file by file in name order (parsed once; do not modify). */
export function manifests(env: Environment): Manifest[] {
  let objects = parsed.get(env.name);
  if (!objects) {
    const dir = path.join(synth().dir, env.name);
    objects = fs
      .readdirSync(dir)
      .sort()
      .flatMap((file) => Yaml.load(path.join(dir, file)) as Manifest[]);
    parsed.set(env.name, objects);
  }
  return objects;
}

/** Each environment with its objects. */
export function eachEnvironment(): [Environment, Manifest[]][] {
  return Object.values(environments).map((env) => [env, manifests(env)]);
}

export function ofKind(objects: Manifest[], kind: string): Manifest[] {
  return objects.filter((o) => o.kind === kind);
}

/** The one object of a kind and name. */
export function one(objects: Manifest[], kind: string, name: string): Manifest {
  const found = objects.filter((o) => o.kind === kind && o.metadata.name === name);
  if (found.length !== 1) throw new Error(`${found.length} ${kind} objects named ${name}`);
  return found[0]!;
}

/** Every container (init containers included) of every workload among the objects. */
export function containers(objects: Manifest[]): Record<string, any>[] {
  return objects
    .filter((o) => o.spec?.template?.spec)
    .flatMap((o) => [...(o.spec.template.spec.initContainers ?? []), ...o.spec.template.spec.containers]);
}

/** The container of a workload by name. */
export function container(workload: Manifest, name: string): Record<string, any> {
  const found = [...(workload.spec.template.spec.initContainers ?? []), ...workload.spec.template.spec.containers].filter(
    (c: Record<string, any>) => c.name === name,
  );
  if (found.length !== 1) throw new Error(`${found.length} containers named ${name} in ${workload.metadata.name}`);
  return found[0]!;
}

/** A container's environment variables by name: the literal value, or the reference. */
export function envOf(c: Record<string, any>): Record<string, { value?: string; valueFrom?: Record<string, any> }> {
  return Object.fromEntries((c.env ?? []).map(({ name, ...rest }: Record<string, any>) => [name, rest]));
}
