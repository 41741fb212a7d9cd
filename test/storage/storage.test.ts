import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import diagnostics from 'node:diagnostics_channel';
import type { ClientRequest } from 'node:http';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Storage } from '@google-cloud/storage';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { encodePng } from '../../src/runner/pipeline/png.ts';
import { createGcsImageStore } from '../../src/storage/gcs.ts';
import { createLocalImageStore } from '../../src/storage/local.ts';
import { imageKey, storedKeys, thumbnailKey, type ImageStore } from '../../src/storage/types.ts';
import { crc32cBase64, startFakeGcs, type FakeGcs } from '../helpers/fake-gcs.ts';

const pngOf = (size: number, fill: number) =>
  encodePng({ width: size, height: size, rgb: new Uint8Array(size * size * 3).map((_, i) => (i * fill) & 0xff) }, [
    ['noise', randomBytes(16).toString('hex')],
  ]);

// ---------------------------------------------------------------------------------------------
const local = suite<{ dir: string; root: string; store: ImageStore }>('local image store', {
  dir: '',
  root: '',
  store: undefined as unknown as ImageStore,
});

local.before.each(async (ctx) => {
  ctx.dir = await mkdtemp(path.join(tmpdir(), 'itemgen-storage-'));
  ctx.root = path.join(ctx.dir, 'images');
  ctx.store = createLocalImageStore(ctx.root);
});

local.after.each(async (ctx) => {
  await rm(ctx.dir, { recursive: true, force: true });
});

local('put then read gives the bytes back, at generated/{id}/{n}.png; no links', async ({ root, store }) => {
  const id = randomUUID();
  const png = pngOf(8, 3);
  assert.is(store.kind, 'local');
  const ref = await store.putImage({ generationId: id, index: 2, png, seed: 7 });
  assert.equal(ref, { key: `generated/${id}/2.png` });
  assert.equal(await readFile(path.join(root, 'generated', id, '2.png')), png);
  assert.equal(await store.read(ref.key), png);
  assert.is(await store.linkFor(ref.key), null);
  assert.is(await store.read(imageKey(id, 3)), null);
  assert.is(await store.read(imageKey(randomUUID(), 0)), null);
});

local('put is idempotent and atomic: readers see a whole image, never a part; no temporary files stay', async ({ root, store }) => {
  const id = randomUUID();
  const key = imageKey(id, 0);
  const a = pngOf(256, 5);
  const b = pngOf(256, 11);
  await store.putImage({ generationId: id, index: 0, png: a, seed: 1 });
  await store.putImage({ generationId: id, index: 0, png: a, seed: 1 });
  assert.equal(await store.read(key), a);
  // A writer alternates between two images while a reader keeps reading: every read is one of them.
  let writing = true;
  const writer = (async () => {
    for (let i = 0; i < 30; i++) await store.putImage({ generationId: id, index: 0, png: i % 2 ? a : b, seed: 1 });
  })().finally(() => {
    writing = false;
  });
  let reads = 0;
  const torn: number[] = [];
  while (writing && reads < 10_000) {
    const got = await store.read(key);
    if (!got || !(got.equals(a) || got.equals(b))) torn.push(reads);
    reads++;
  }
  await writer;
  assert.ok(reads > 0);
  assert.equal(torn, [], 'reads that returned no file or a partial one');
  assert.equal(await readdir(path.join(root, 'generated', id)), ['0.png']);
});

local('keys that are not generated/<uuid>/<n>.png read as null and never touch other paths', async ({ dir, root, store }) => {
  const id = randomUUID();
  await store.putImage({ generationId: id, index: 0, png: pngOf(4, 1), seed: 1 });
  await writeFile(path.join(dir, 'secret.png'), 'outside the root');
  await writeFile(path.join(root, 'secret.png'), 'inside the root, not an image key');
  await mkdir(path.join(root, 'generated', 'not-a-uuid'), { recursive: true });
  await writeFile(path.join(root, 'generated', 'not-a-uuid', '0.png'), 'wrong folder');
  await writeFile(path.join(root, 'generated', id, '.0.png.abc.tmp'), 'a temporary file');
  const keys = [
    '../secret.png',
    'secret.png',
    `generated/${id}/../../../secret.png`,
    `generated/${id}/../../secret.png`,
    `generated/${id}/0.png/../../../../secret.png`,
    `generated/../../secret.png`,
    `/generated/${id}/0.png`,
    path.join(dir, 'secret.png'),
    `generated/${id}/0.png\n`,
    `generated/${id}/0.png\0`,
    `generated\\${id}\\0.png`,
    `generated/${id}%2F..%2F..%2Fsecret.png`,
    `generated/${id}/-1.png`,
    `generated/${id}/01.png`,
    `generated/${id}/0.PNG.tmp`,
    `generated/${id}/.0.png.abc.tmp`,
    `generated/${id}/0.thumb128.webp`,
    `generated/${id}/0.png.thumb256.webp`,
    `generated/not-a-uuid/0.png`,
    `generated/${id}`,
    '',
  ];
  for (const key of keys) assert.is(await store.read(key), null, JSON.stringify(key));
  assert.ok(await store.read(imageKey(id, 0)));
});

local('a generation id that would leave the root is refused and writes nothing', async ({ dir, store }) => {
  for (const generationId of ['../../escaped', `${randomUUID()}/../..`, '']) {
    try {
      await store.putImage({ generationId, index: 0, png: pngOf(4, 1), seed: 1 });
      assert.unreachable(`accepted ${JSON.stringify(generationId)}`);
    } catch (err) {
      assert.match((err as Error).message, /not an image key/);
    }
  }
  assert.equal(await readdir(dir), []);
});

local('delete removes the images and their emptied folder; repeating it, missing keys and foreign keys are no error', async ({ root, store }) => {
  const id = randomUUID();
  const other = randomUUID();
  const keys = [0, 1].map((index) => imageKey(id, index));
  for (const index of [0, 1]) await store.putImage({ generationId: id, index, png: pngOf(8, index + 1), seed: index });
  await store.putImage({ generationId: other, index: 0, png: pngOf(8, 9), seed: 9 });
  await store.delete(keys);
  for (const key of keys) assert.is(await store.read(key), null);
  assert.equal(await readdir(path.join(root, 'generated')), [other], 'the emptied folder went, the other generation stayed');
  await store.delete(keys);
  await store.delete([imageKey(randomUUID(), 0), '../../outside.png']);
  assert.ok(await store.read(imageKey(other, 0)));
});

local('a thumbnail is stored beside its image and read back; exists tells stored from missing; there is no origin', async ({ root, store }) => {
  const id = randomUUID();
  const key = imageKey(id, 0);
  const webp = Buffer.from('RIFF-webp-bytes');
  assert.is(store.origin, undefined);
  await store.putImage({ generationId: id, index: 0, png: pngOf(8, 1), seed: 1 });
  assert.is(await store.exists(thumbnailKey(key)), false);
  await store.putThumbnail(key, webp);
  assert.equal(await readFile(path.join(root, 'generated', id, '0.thumb256.webp')), webp);
  assert.equal(await store.read(thumbnailKey(key)), webp);
  assert.is(await store.exists(thumbnailKey(key)), true);
  assert.is(await store.exists(key), true);
  assert.is(await store.exists('../../outside.png'), false);
  await store.delete(storedKeys([key]));
  assert.equal(await readdir(path.join(root, 'generated')), [], 'image, thumbnail and their folder are gone');
});

local.run();

// ---------------------------------------------------------------------------------------------
interface GcsContext {
  fake: FakeGcs;
  storage: Storage;
  store: ImageStore;
  /** Added to the fake's clock, to age signed URLs without waiting. */
  clockSkewMs: number;
  hosts: string[];
  onRequest: (message: unknown) => void;
}

const gcs = suite<GcsContext>('GCS image store, real client against a fake server', {} as GcsContext);
const BUCKET = 'images';
const PUBLIC_BUCKET = 'public-images';
const SIGNED_URL_SECONDS = 600;

gcs.before(async (ctx) => {
  // Every HTTP request the client makes is recorded, to show none of them leaves loopback.
  ctx.hosts = [];
  ctx.onRequest = (message) => ctx.hosts.push(String((message as { request: ClientRequest }).request.host));
  diagnostics.subscribe('http.client.request.start', ctx.onRequest);
  const keys = generateKeyPairSync('rsa', { modulusLength: 2048 });
  ctx.clockSkewMs = 0;
  ctx.fake = await startFakeGcs({
    signerPublicKey: keys.publicKey,
    publicBuckets: [PUBLIC_BUCKET],
    now: () => Date.now() + ctx.clockSkewMs,
  });
  // With an apiEndpoint of its own the client sends no credentials (useAuthWithCustomEndpoint is
  // false), so it never asks Google for a token; the private key only signs URLs, locally.
  ctx.storage = new Storage({
    apiEndpoint: ctx.fake.endpoint,
    projectId: 'test',
    credentials: {
      client_email: 'runner@test.iam.gserviceaccount.com',
      private_key: keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    },
  });
  ctx.store = createGcsImageStore({ bucket: BUCKET, storage: ctx.storage, signedUrlSeconds: SIGNED_URL_SECONDS });
});

gcs.before.each((ctx) => {
  ctx.fake.requests.length = 0;
  ctx.clockSkewMs = 0;
});

gcs.after(async (ctx) => {
  diagnostics.unsubscribe('http.client.request.start', ctx.onRequest);
  await ctx.fake.close();
});

const put = (store: ImageStore, png: Buffer, generationId = randomUUID(), index = 0) =>
  store.putImage({ generationId, index, png, seed: 42 });

gcs('the fake computes CRC32C like GCS (known vectors)', () => {
  assert.is(crc32cBase64(Buffer.from('data')), 'rth90Q==');
  assert.is(crc32cBase64(Buffer.from('123456789')), Buffer.from('e3069283', 'hex').toString('base64'));
});

gcs('an upload is one conditional multipart request with content type, cache control and metadata', async ({ fake, store }) => {
  const id = randomUUID();
  const png = pngOf(16, 7);
  assert.is(store.kind, 'gcs');
  const ref = await put(store, png, id, 1);
  assert.equal(ref, { key: `generated/${id}/1.png` });
  const object = fake.objects.get(`${BUCKET}/${ref.key}`);
  assert.ok(object);
  assert.equal(object.data, png);
  assert.is(object.metadata.contentType, 'image/png');
  assert.is(object.metadata.cacheControl, 'private, max-age=31536000, immutable');
  assert.equal(object.metadata.metadata, { generation_id: id, seed: '42', index: '1' });
  assert.is(fake.requests.length, 1);
  const upload = new URL(fake.requests[0]!.split(' ')[1]!, fake.endpoint);
  assert.is(upload.pathname, `/upload/storage/v1/b/${BUCKET}/o`);
  assert.is(upload.searchParams.get('uploadType'), 'multipart');
  assert.is(upload.searchParams.get('name'), ref.key);
  assert.is(upload.searchParams.get('ifGenerationMatch'), '0');
});

gcs('a crc32c from the server that does not match the bytes fails the put, and the client removes the object', async ({ fake, store }) => {
  const id = randomUUID();
  fake.misreportCrc32cNext(1);
  try {
    await put(store, pngOf(16, 9), id);
    assert.unreachable('put succeeded with a wrong checksum');
  } catch (err) {
    assert.is((err as { code?: unknown }).code, 'FILE_NO_UPLOAD');
  }
  assert.not.ok(fake.objects.has(`${BUCKET}/${imageKey(id, 0)}`));
});

gcs('an upload answered 503 is retried by the client and succeeds', async ({ fake, store }) => {
  const png = pngOf(16, 13);
  fake.failNext(1, 503);
  const ref = await put(store, png);
  assert.equal(fake.objects.get(`${BUCKET}/${ref.key}`)?.data, png);
  assert.is(fake.requests.filter((r) => r.startsWith('POST /upload/')).length, 2);
});

gcs('a retried upload whose first response was lost finds its own bytes there and succeeds', async ({ fake, store }) => {
  const png = pngOf(16, 17);
  fake.failNext(1, 503, 'after');
  const ref = await put(store, png);
  const object = fake.objects.get(`${BUCKET}/${ref.key}`);
  assert.equal(object?.data, png);
  // One upload stored it, the retry met the precondition, the store compared checksums.
  assert.equal(
    fake.requests.map((r) => r.split('?')[0]),
    [`POST /upload/storage/v1/b/${BUCKET}/o`, `POST /upload/storage/v1/b/${BUCKET}/o`, `GET /storage/v1/b/${BUCKET}/o/${encodeURIComponent(ref.key)}`],
  );
});

gcs('repeating a put keeps the stored object; other bytes for the same key replace it', async ({ fake, store }) => {
  const id = randomUUID();
  const first = pngOf(16, 19);
  const ref = await put(store, first, id);
  const stored = () => fake.objects.get(`${BUCKET}/${ref.key}`)!;
  const generation = stored().metadata.generation;
  await put(store, first, id);
  assert.is(stored().metadata.generation, generation);
  const second = pngOf(16, 23);
  await put(store, second, id);
  assert.equal(stored().data, second);
  assert.is.not(stored().metadata.generation, generation);
});

gcs('read gives the bytes back (client-verified); a missing or foreign key reads as null', async ({ fake, store }) => {
  const png = pngOf(32, 29);
  const ref = await put(store, png);
  assert.equal(await store.read(ref.key), png);
  assert.is(await store.read(imageKey(randomUUID(), 0)), null);
  const before = fake.requests.length;
  assert.is(await store.read('../other-bucket/secret.png'), null);
  assert.is(await store.linkFor('generated/x/0.png'), null);
  assert.is(fake.requests.length, before, 'a foreign key must not reach the server');
});

gcs('delete removes the objects; a missing object and a foreign key are no error, and a foreign key sends nothing', async ({ fake, store }) => {
  const id = randomUUID();
  const refs = [await put(store, pngOf(8, 1), id, 0), await put(store, pngOf(8, 2), id, 1)];
  const kept = await put(store, pngOf(8, 3));
  fake.requests.length = 0;
  await store.delete(refs.map((r) => r.key));
  assert.is(fake.requests.filter((r) => r.startsWith('DELETE ')).length, 2);
  for (const r of refs) assert.not.ok(fake.objects.has(`${BUCKET}/${r.key}`));
  assert.ok(fake.objects.has(`${BUCKET}/${kept.key}`));
  fake.requests.length = 0;
  await store.delete([refs[0]!.key, '../other-bucket/secret.png']);
  assert.equal(fake.requests.map((r) => r.split(' ')[0]), ['DELETE'], 'only the image key reached the server');
});

gcs('linkFor gives a V4 signed URL that fetches the PNG until it expires', async (ctx) => {
  const png = pngOf(32, 31);
  const ref = await put(ctx.store, png);
  const link = await ctx.store.linkFor(ref.key);
  assert.ok(link);
  const url = new URL(link);
  assert.is(url.origin, ctx.fake.endpoint);
  assert.is(url.searchParams.get('X-Goog-Algorithm'), 'GOOG4-RSA-SHA256');
  assert.is(url.searchParams.get('X-Goog-Expires'), String(SIGNED_URL_SECONDS));
  const res = await fetch(link);
  assert.is(res.status, 200);
  assert.is(res.headers.get('content-type'), 'image/png');
  assert.equal(Buffer.from(await res.arrayBuffer()), png);

  const tampered = new URL(link);
  const sig = tampered.searchParams.get('X-Goog-Signature')!;
  tampered.searchParams.set('X-Goog-Signature', (sig[0] === '0' ? '1' : '0') + sig.slice(1));
  assert.is((await fetch(tampered)).status, 403);
  const other = new URL(link);
  other.pathname = `/${BUCKET}/${(await put(ctx.store, pngOf(8, 1))).key}`;
  assert.is((await fetch(other)).status, 403, 'a signature covers one object only');

  ctx.clockSkewMs = (SIGNED_URL_SECONDS + 1) * 1000;
  const expired = await fetch(link);
  assert.is(expired.status, 400);
  assert.match(await expired.text(), 'ExpiredToken');
});

gcs('a public bucket gives a stable public URL with the upload, and linkFor returns it', async ({ fake, storage }) => {
  const store = createGcsImageStore({ bucket: PUBLIC_BUCKET, storage, publicBucket: true });
  const png = pngOf(16, 37);
  const ref = await put(store, png);
  const url = `${fake.endpoint}/${PUBLIC_BUCKET}/${ref.key}`;
  assert.equal(ref, { key: ref.key, url });
  assert.is(await store.linkFor(ref.key), url);
  assert.is(fake.objects.get(`${PUBLIC_BUCKET}/${ref.key}`)?.metadata.cacheControl, 'public, max-age=31536000, immutable');
  const res = await fetch(url);
  assert.is(res.status, 200);
  assert.equal(Buffer.from(await res.arrayBuffer()), png);
  // The same unsigned URL on the private bucket is refused.
  assert.is((await fetch(`${fake.endpoint}/${BUCKET}/${ref.key}`)).status, 403);
});

gcs('a thumbnail upload is create-only (WebP, cached for good): a second copy leaves the first; exists; the origin is the endpoint', async ({ fake, store }) => {
  assert.is(store.origin, fake.endpoint);
  const ref = await put(store, pngOf(8, 5));
  const key = thumbnailKey(ref.key);
  assert.is(await store.exists(key), false);
  fake.requests.length = 0;
  await store.putThumbnail(ref.key, Buffer.from('first'));
  const upload = new URL(fake.requests[0]!.split(' ')[1]!, fake.endpoint);
  assert.is(upload.searchParams.get('name'), key);
  assert.is(upload.searchParams.get('ifGenerationMatch'), '0');
  const object = fake.objects.get(`${BUCKET}/${key}`)!;
  assert.is(object.metadata.contentType, 'image/webp');
  assert.is(object.metadata.cacheControl, 'private, max-age=31536000, immutable');
  await store.putThumbnail(ref.key, Buffer.from('second'));
  assert.equal(fake.objects.get(`${BUCKET}/${key}`)!.data, Buffer.from('first'), 'another gateway\'s copy stays');
  assert.is(await store.exists(key), true);
  await store.delete(storedKeys([ref.key]));
  assert.is(await store.exists(key), false);
  assert.is(await store.exists(ref.key), false);
});

gcs('no request left 127.0.0.1', ({ hosts }) => {
  assert.ok(hosts.length > 0);
  assert.equal([...new Set(hosts)], ['127.0.0.1']);
});

gcs.run();
