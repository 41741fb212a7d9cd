// Gallery thumbnails (GET /v1/generations/{id}/images/{n}/thumbnail, src/gateway/thumbnails.ts)
// over HTTP on real PostgreSQL: made once with sharp from the stored PNG, stored beside it, cached
// with a strong ETag, the same 404s as the image, removed with their generation; in the local
// folder (bytes) and in GCS (a real client against the fake server: a signed link).
import { generateKeyPairSync } from 'node:crypto';
import { Storage } from '@google-cloud/storage';
import sharp from 'sharp';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { semaphore } from '../../src/gateway/thumbnails.ts';
import { encodePng } from '../../src/runner/pipeline/png.ts';
import { createGcsImageStore } from '../../src/storage/gcs.ts';
import { thumbnailKey } from '../../src/storage/types.ts';
import { startFakeGcs, type FakeGcs } from '../helpers/fake-gcs.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { recordingLogger, type RecordingLogger } from '../helpers/log.ts';
import { completed, submit } from '../helpers/submit.ts';

const RETENTION_DAYS = 7;
const IMMUTABLE = 'private, max-age=31536000, immutable';

/** A PNG of smooth colour waves, closer to a generated picture than a flat fill or noise. */
const pngOf = (width: number, height: number) => {
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      rgb[i] = 128 + 100 * Math.sin(x / 9) * Math.cos(y / 13);
      rgb[i + 1] = (x * 255) / width;
      rgb[i + 2] = 128 + 90 * Math.sin((x + y) / 17);
    }
  }
  return encodePng({ width, height, rgb }, [['parameters', 'a glowing sword']]);
};

const thumbnailPath = (id: string, n = 0) => `/v1/generations/${id}/images/${n}/thumbnail`;

/** Thumbnails this gateway rendered so far, from its /metrics. */
async function rendered(t: TestGateway): Promise<number> {
  const text = await (await t.call('GET', '/metrics')).text();
  const m = /^itemgen_thumbnails_rendered_total (\d+)$/m.exec(text);
  assert.ok(m, 'the counter is exported');
  return Number(m[1]);
}

const bytesOf = async (res: Response) => Buffer.from(await res.arrayBuffer());

async function expectProblem(res: Response, status: number, code: string) {
  assert.is(res.status, status);
  assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
  assert.is(((await res.json()) as { code: string }).code, code);
}

// ---------------------------------------------------------------------------------------------
const local = suite<{ t: TestGateway; alice: string; bob: string; log: RecordingLogger }>('thumbnails: local image store (postgres)');

local.before(async (ctx) => {
  ctx.log = recordingLogger();
  ctx.t = await startTestGateway({ store: 'postgres', keys: [{ name: 'alice' }, { name: 'bob' }], log: ctx.log, env: { RETENTION_DAYS: String(RETENTION_DAYS) } });
  ctx.alice = ctx.t.keys.alice!;
  ctx.bob = ctx.t.keys.bob!;
});
local.after(({ t }) => t.stop());

local('a 512×256 image: a 256×128 WebP, a small fraction of the PNG, cached for good with a strong ETag, stored beside the image', async ({ t, alice }) => {
  const png = pngOf(512, 256);
  const { id, keys } = await completed(t, alice, [png]);
  const view = (await (await t.call('GET', `/v1/generations/${id}`, { key: alice })).json()) as { images: { thumbnail_url: string }[] };
  assert.is(view.images[0]!.thumbnail_url, `${t.url}${thumbnailPath(id)}`);

  const res = await fetch(view.images[0]!.thumbnail_url, { headers: { authorization: `Bearer ${alice}` } });
  assert.is(res.status, 200);
  assert.is(res.headers.get('content-type'), 'image/webp');
  assert.is(res.headers.get('cache-control'), IMMUTABLE);
  assert.match(res.headers.get('etag') ?? '', /^"[A-Za-z0-9_-]{43}"$/);
  const webp = await bytesOf(res);
  const meta = await sharp(webp).metadata();
  assert.equal([meta.format, meta.width, meta.height], ['webp', 256, 128]);
  assert.ok(webp.length < png.length / 20, `${webp.length} bytes against the PNG's ${png.length}`);
  assert.ok(webp.length < 8 * 1024, `${webp.length} bytes`);
  assert.equal(await t.gw.images.read(thumbnailKey(keys[0]!)), webp, 'stored beside the image');
  assert.is(thumbnailKey(keys[0]!), `generated/${id}/0.thumb256.webp`);
});

local('aspect kept and never scaled up: 256×512 gives 128×256, 200×100 stays 200×100', async ({ t, alice }) => {
  const { id } = await completed(t, alice, [pngOf(256, 512), pngOf(200, 100)]);
  for (const [n, size] of [[0, [128, 256]], [1, [200, 100]]] as const) {
    const res = await t.call('GET', thumbnailPath(id, n), { key: alice });
    assert.is(res.status, 200);
    const meta = await sharp(await bytesOf(res)).metadata();
    assert.equal([meta.width, meta.height], size, `image ${n}`);
  }
});

local('a second request reads the stored thumbnail (no render); If-None-Match with its ETag answers 304', async ({ t, alice }) => {
  const { id } = await completed(t, alice, [pngOf(512, 256)]);
  const before = await rendered(t);
  const first = await t.call('GET', thumbnailPath(id), { key: alice });
  const etag = first.headers.get('etag')!;
  const webp = await bytesOf(first);
  assert.is(await rendered(t), before + 1);

  const second = await t.call('GET', thumbnailPath(id), { key: alice });
  assert.is(second.status, 200);
  assert.is(second.headers.get('etag'), etag);
  assert.equal(await bytesOf(second), webp);
  assert.is(await rendered(t), before + 1, 'read, not rendered again');

  for (const ifNoneMatch of [etag, `W/${etag}`, `"other", ${etag}`, '*']) {
    const res = await t.call('GET', thumbnailPath(id), { key: alice, headers: { 'if-none-match': ifNoneMatch } });
    assert.is(res.status, 304, ifNoneMatch);
    assert.is(res.headers.get('etag'), etag);
    assert.is(res.headers.get('cache-control'), IMMUTABLE);
    assert.is((await bytesOf(res)).length, 0);
  }
  const other = await t.call('GET', thumbnailPath(id), { key: alice, headers: { 'if-none-match': '"another-thumbnail"' } });
  assert.is(other.status, 200);
  assert.equal(await bytesOf(other), webp);
  assert.is(await rendered(t), before + 1);
});

local('concurrent requests: each thumbnail is rendered once, and every request gets its bytes', async ({ t, alice }) => {
  const { id } = await completed(t, alice, [pngOf(512, 256), pngOf(256, 512), pngOf(512, 512), pngOf(384, 256)]);
  const before = await rendered(t);
  const answers = await Promise.all(
    [0, 1, 2, 3].flatMap((n) => Array.from({ length: 4 }, async () => ({ n, res: await t.call('GET', thumbnailPath(id, n), { key: alice }) }))),
  );
  const bytes = new Map<number, Buffer>();
  for (const { n, res } of answers) {
    assert.is(res.status, 200);
    const webp = await bytesOf(res);
    if (bytes.has(n)) assert.equal(webp, bytes.get(n), `image ${n}: the same bytes for every request`);
    else bytes.set(n, webp);
  }
  assert.is(bytes.size, 4);
  assert.is(await rendered(t), before + 4, 'one render per thumbnail for 16 requests');
});

local('the 404s of the image: unknown, another key\'s, not completed, no such image, not in storage; 400 for a bad index; 401 without a key', async ({ t, alice, bob, log }) => {
  const { id, keys } = await completed(t, alice, [pngOf(256, 256)]);
  await expectProblem(await t.call('GET', thumbnailPath('00000000-0000-4000-8000-000000000000'), { key: alice }), 404, 'not_found');
  await expectProblem(await t.call('GET', thumbnailPath(id), { key: bob }), 404, 'not_found');
  const pending = await submit(t, { prompt: 'a ring' }, alice);
  await expectProblem(await t.call('GET', thumbnailPath(pending), { key: alice }), 404, 'image_not_ready');
  await expectProblem(await t.call('GET', thumbnailPath(id, 1), { key: alice }), 404, 'image_not_found');
  await expectProblem(await t.call('GET', thumbnailPath(id, 9), { key: alice }), 400, 'invalid_id');
  await expectProblem(await t.call('GET', thumbnailPath(id)), 401, 'unauthorized');

  await t.gw.images.delete(keys);
  await expectProblem(await t.call('GET', thumbnailPath(id), { key: alice }), 404, 'image_missing');
  assert.ok(log.at('error').some((e) => e.msg.includes('missing image') && e.fields.key === keys[0]));
});

local('a corrupt or truncated PNG is a logged 422 image_unreadable, nothing stored; the gateway goes on rendering', async ({ t, alice, log }) => {
  const good = pngOf(512, 256);
  const { id, keys } = await completed(t, alice, [Buffer.from('not a png at all'), good.subarray(0, good.length / 2), good]);
  const before = await rendered(t);
  for (const n of [0, 1]) {
    await expectProblem(await t.call('GET', thumbnailPath(id, n), { key: alice }), 422, 'image_unreadable');
    assert.is(await t.gw.images.exists(thumbnailKey(keys[n]!)), false, `image ${n}: no thumbnail stored`);
    assert.ok(log.at('error').some((e) => e.msg.includes('thumbnail') && e.fields.key === keys[n]), `image ${n}: logged`);
  }
  assert.is((await t.call('GET', thumbnailPath(id, 2), { key: alice })).status, 200);
  assert.is(await rendered(t), before + 1);
});

local('DELETE removes the stored thumbnails with the images; a thumbnail never made is no error', async ({ t, alice }) => {
  const { id, keys } = await completed(t, alice, [pngOf(256, 256), pngOf(256, 256)]);
  assert.is((await t.call('GET', thumbnailPath(id, 0), { key: alice })).status, 200);
  assert.is(await t.gw.images.exists(thumbnailKey(keys[0]!)), true);
  assert.is(await t.gw.images.exists(thumbnailKey(keys[1]!)), false, 'image 1 has none yet');
  assert.is((await t.call('DELETE', `/v1/generations/${id}`, { key: alice })).status, 204);
  for (const key of [...keys, ...keys.map(thumbnailKey)]) assert.is(await t.gw.images.exists(key), false, key);
  await expectProblem(await t.call('GET', thumbnailPath(id, 0), { key: alice }), 404, 'not_found');
});

local('the retention sweep removes the thumbnails with the images', async ({ t, alice }) => {
  const { id, keys } = await completed(t, alice, [pngOf(256, 256)]);
  assert.is((await t.call('GET', thumbnailPath(id), { key: alice })).status, 200);
  await t.gw.db.query(`UPDATE generations SET finished_at = now() - make_interval(days => $2) WHERE id = $1`, [id, RETENTION_DAYS + 1]);
  assert.ok((await t.gw.retention.sweep()) >= 1);
  assert.is(await t.gw.images.exists(keys[0]!), false);
  assert.is(await t.gw.images.exists(thumbnailKey(keys[0]!)), false);
});

local.run();

// ---------------------------------------------------------------------------------------------
const gcs = suite<{ t: TestGateway; fake: FakeGcs; alice: string }>('thumbnails: GCS image store (fake server, postgres)');
const BUCKET = 'images';

gcs.before(async (ctx) => {
  const keys = generateKeyPairSync('rsa', { modulusLength: 2048 });
  ctx.fake = await startFakeGcs({ signerPublicKey: keys.publicKey });
  // With an endpoint of its own the client sends no credentials; the private key only signs URLs, locally.
  const storage = new Storage({
    apiEndpoint: ctx.fake.endpoint,
    projectId: 'test',
    credentials: { client_email: 'gateway@test.iam.gserviceaccount.com', private_key: keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() },
  });
  ctx.t = await startTestGateway({ store: 'postgres', keys: [{ name: 'alice' }], images: createGcsImageStore({ bucket: BUCKET, storage }) });
  ctx.alice = ctx.t.keys.alice!;
});
gcs.after(async ({ t, fake }) => {
  await t.stop();
  await fake.close();
});

gcs('a redirect to a signed link of the stored WebP, uploaded once; the store names the origin the page must allow', async ({ t, fake, alice }) => {
  assert.is(t.gw.images.origin, fake.endpoint);
  const csp = (await fetch(`${t.url}/`)).headers.get('content-security-policy') ?? '';
  assert.ok(csp.includes(`img-src 'self' data: blob: ${fake.endpoint};`) && csp.includes(`connect-src 'self' ${fake.endpoint};`), `the web app may fetch from the bucket: ${csp}`);
  const { id, keys } = await completed(t, alice, [pngOf(512, 256)]);
  const before = await rendered(t);
  const links: string[] = [];
  for (let i = 0; i < 2; i++) {
    const res = await fetch(`${t.url}${thumbnailPath(id)}`, { headers: { authorization: `Bearer ${alice}` }, redirect: 'manual' });
    assert.is(res.status, 302);
    links.push(res.headers.get('location')!);
  }
  assert.is(await rendered(t), before + 1, 'the second request found it stored');
  const uploads = fake.requests.filter((r) => r.startsWith('POST /upload/') && r.includes(encodeURIComponent(thumbnailKey(keys[0]!))));
  assert.is(uploads.length, 1);

  for (const link of links) {
    assert.ok(link.startsWith(`${fake.endpoint}/${BUCKET}/${thumbnailKey(keys[0]!)}?`), link);
    assert.match(link, /X-Goog-Signature=/);
    const res = await fetch(link);
    assert.is(res.status, 200, 'the signature verifies');
    assert.is(res.headers.get('content-type'), 'image/webp');
    assert.is(res.headers.get('cache-control'), IMMUTABLE);
    const meta = await sharp(await bytesOf(res)).metadata();
    assert.equal([meta.format, meta.width, meta.height], ['webp', 256, 128]);
  }

  assert.is((await t.call('DELETE', `/v1/generations/${id}`, { key: alice })).status, 204);
  assert.not.ok([...fake.objects.keys()].some((k) => k.includes(id)), 'image and thumbnail are gone from the bucket');
});

gcs.run();

// ---------------------------------------------------------------------------------------------
const slots = suite('thumbnails: the render semaphore');

slots('at most n tasks run at once; the next starts when one ends, first come first served', async () => {
  const slot = semaphore(2);
  const started: number[] = [];
  const finish: (() => void)[] = [];
  const signals: (() => void)[] = [];
  const startedSignal = [0, 1, 2, 3].map((i) => new Promise<void>((resolve) => (signals[i] = resolve)));
  const tasks = [0, 1, 2, 3].map((i) =>
    slot(async () => {
      started.push(i);
      signals[i]!();
      await new Promise<void>((resolve) => (finish[i] = resolve));
      return i;
    }),
  );
  // A free slot runs its task at once, in the same turn; the others wait.
  assert.equal(started, [0, 1]);
  finish[1]!();
  await startedSignal[2];
  assert.equal(started, [0, 1, 2], 'the first waiting one took the freed slot, and only it');
  finish[0]!();
  await startedSignal[3];
  assert.equal(started, [0, 1, 2, 3]);
  finish[2]!();
  finish[3]!();
  assert.equal(await Promise.all(tasks), [0, 1, 2, 3]);
});

slots('a task that throws frees its slot', async () => {
  const slot = semaphore(1);
  await slot(async () => {
    throw new Error('render failed');
  }).catch(() => {});
  assert.is(await slot(async () => 'next'), 'next');
});

slots.run();
