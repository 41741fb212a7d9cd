// Criterion 6: every image by digest. Third-party images are pinned to the digests of the committed
// images.lock.json (the one file Dockerfiles and manifests share); the runner's own image is the one
// exception, pinned to the pushed digest by CI at deploy time (scripts/ci/delivery.ts pinImage).
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { imageRepository } from '../../infra/environments.ts';
import { container, containers, eachEnvironment, one } from '../helpers/manifests.ts';

const lock = JSON.parse(fs.readFileSync(path.join(import.meta.dirname, '..', '..', 'images.lock.json'), 'utf8')) as Record<string, string>;
const DIGEST = /@sha256:[0-9a-f]{64}$/;

test('the lock file holds one sha256 digest per name:tag, for the images of the contract', () => {
  assert.equal(Object.keys(lock).sort(), [
    'gcr.io/google.com/cloudsdktool/google-cloud-cli:slim',
    'node:24-bookworm-slim',
    'nvidia/cuda:12.8.1-cudnn-runtime-ubuntu22.04',
    'rabbitmq:3.13.7',
    // The gateway's Managed Prometheus sidecar on Cloud Run (infra/gateway-service.ts).
    'us-docker.pkg.dev/cloud-ops-agents-artifacts/cloud-run-gmp-sidecar/cloud-run-gmp-sidecar:1.2.0',
  ]);
  for (const [ref, digest] of Object.entries(lock)) {
    assert.match(ref, /^[a-z0-9./_-]+:[\w.-]+$/, ref);
    assert.match(digest, /^sha256:[0-9a-f]{64}$/, ref);
  }
});

test('every container and init container image is name:tag@digest with the lock file digest, except the runner (pinned by CI)', () => {
  for (const [env, objects] of eachEnvironment()) {
    const runnerRepository = imageRepository(env, 'runner');
    const images = containers(objects).map((c) => c.image as string);
    assert.ok(images.length >= 3, `${env.name}: ${images}`);
    for (const image of images) {
      assert.not.match(image, /:latest(@|$)/, `${env.name}: ${image}`);
      if (image.startsWith(`${runnerRepository}:`)) continue;
      assert.match(image, DIGEST, `${env.name}: ${image} is not pinned by digest`);
      const [named, digest] = image.split('@') as [string, string];
      // Mirrored images carry the registry path in front of the Docker Hub name.
      const key = Object.keys(lock).find((k) => named === k || named.endsWith(`/library/${k}`) || named.endsWith(`/${k}`));
      assert.ok(key, `${env.name}: ${image} has no entry in images.lock.json`);
      assert.is(digest, lock[key!], `${env.name}: ${image}`);
    }
  }
});

test('RabbitMQ comes through the environment Artifact Registry mirror of Docker Hub; the cloud CLI from gcr.io by digest', () => {
  for (const [env, objects] of eachEnvironment()) {
    const broker = container(one(objects, 'StatefulSet', 'rabbitmq'), 'rabbitmq');
    assert.is(
      broker.image,
      `${env.region}-docker.pkg.dev/${env.project}/${env.prefix}-mirror/library/rabbitmq:3.13.7@${lock['rabbitmq:3.13.7']}`,
    );
    const fetch = container(one(objects, 'Deployment', 'runner'), 'fetch-model');
    const cli = 'gcr.io/google.com/cloudsdktool/google-cloud-cli:slim';
    assert.is(fetch.image, `${cli}@${lock[cli]}`);
  }
});

test('the committed runner image is the product version, never a moving tag', () => {
  const { version } = JSON.parse(fs.readFileSync(path.join(import.meta.dirname, '..', '..', 'package.json'), 'utf8')) as { version: string };
  for (const [env, objects] of eachEnvironment()) {
    assert.is(container(one(objects, 'Deployment', 'runner'), 'runner').image, `${imageRepository(env, 'runner')}:${version}`);
  }
});

test.run();
