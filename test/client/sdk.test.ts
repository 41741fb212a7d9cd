// The SDK against the embedded product (real gateway, real runner on the tiny model): submit,
// wait, download, errors, resume after a dropped stream, polling when streams are refused; and
// the parts that need no server (webhook verification, where the API key goes).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Webhook } from 'standardwebhooks';
import { createItemgenClient, ItemgenError, verifyWebhook, type Generation } from '../../src/client/index.ts';
import { decodePng } from '../../src/runner/pipeline/png.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { startEmbeddedProduct, type TestProduct } from '../helpers/product.ts';
import { startTcpProxy } from '../helpers/tcp-proxy.ts';

const small = { prompt: 'a glowing sword', num_inference_steps: 3, width: 256, height: 256, seed: 7 };

/** A fetch that records what it was asked (URL and headers) before passing it on. */
function recordingFetch(answer?: (url: string, init: RequestInit | undefined) => Response | undefined) {
  const calls: { url: string; headers: Headers }[] = [];
  const f: typeof fetch = async (input, init) => {
    const req = input instanceof Request ? input : null;
    const url = req ? req.url : String(input);
    calls.push({ url, headers: new Headers(req ? req.headers : init?.headers) });
    return answer?.(url, init) ?? fetch(input, init);
  };
  return { fetch: f, calls };
}

const it = suite<{ p: TestProduct }>('the SDK against the embedded product');
it.before(async (ctx) => {
  ctx.p = await startEmbeddedProduct();
});
it.after(async ({ p }) => p.stop());

it('submit → wait → download: a PNG of the asked size and seed; progress reported on the way', async ({ p }) => {
  const client = createItemgenClient({ baseUrl: p.url });
  const submitted = await client.submit(small, { idempotencyKey: 'sdk-test-1' });
  assert.is(submitted.params.seed, 7);
  const seen: Generation['status'][] = [];
  const done = await client.wait(submitted.id, { onProgress: (g) => seen.push(g.status), timeoutMs: 60_000 });
  assert.is(done.status, 'completed');
  assert.is(seen.at(-1), 'completed');
  const png = decodePng(Buffer.from(await client.download(done, 0)));
  assert.is(png.width, 256);
  assert.match(png.texts.parameters!, /Seed: 7, Size: 256x256/);
  const byId = await client.download(done.id, 0);
  assert.equal(Buffer.from(byId), Buffer.from(await client.download(done, 0)), 'by id: the same image route');
  assert.is((await client.submit(small, { idempotencyKey: 'sdk-test-1' })).id, submitted.id, 'Idempotency-Key sent');
});

it('an invalid submit is an ItemgenError carrying the 422 problem and its field', async ({ p }) => {
  const client = createItemgenClient({ baseUrl: p.url });
  try {
    await client.submit({ prompt: 'a shield', width: 100 });
    assert.unreachable('a width of 100 was accepted');
  } catch (err) {
    assert.instance(err, ItemgenError);
    const e = err as ItemgenError;
    assert.is(e.status, 422);
    assert.is(e.code, 'validation_failed');
    assert.match(e.detail, /width/);
    assert.ok(e.fields.some((f) => f.path === 'width'), JSON.stringify(e.fields));
  }
  const missing = await client.get('00000000-0000-4000-8000-000000000000').catch((e: unknown) => e);
  assert.instance(missing, ItemgenError);
  assert.is((missing as ItemgenError).status, 404);
});

it('list pages through every generation with next_cursor', async ({ p }) => {
  const client = createItemgenClient({ baseUrl: p.url });
  const ids = [];
  for (let i = 0; i < 3; i++) ids.push((await client.submit({ ...small, num_inference_steps: 1 })).id);
  const page = await client.list({ limit: 2 });
  assert.is(page.data.length, 2);
  assert.type(page.next_cursor, 'string');
  const all: string[] = [];
  for await (const g of client.listAll({ limit: 2 })) all.push(g.id);
  for (const id of ids) assert.ok(all.includes(id), id);
  assert.is(new Set(all).size, all.length, 'no generation twice');
  for (const id of ids) await client.wait(id, { timeoutMs: 60_000 });
});

it('wait resumes after the stream is cut, with Last-Event-ID, and still gets the terminal event from the stream', async ({ p }) => {
  const port = Number(new URL(p.url).port);
  const proxy = await startTcpProxy('127.0.0.1', port);
  try {
    const rec = recordingFetch();
    const client = createItemgenClient({ baseUrl: `http://127.0.0.1:${proxy.port}`, fetch: rec.fetch });
    const { id } = await client.submit({ ...small, num_inference_steps: 8 });
    let cut = false;
    let firstEventId = '';
    const done = await client.wait(id, {
      timeoutMs: 60_000,
      onProgress: (g) => {
        if (cut) return;
        // Right after the first event: every connection is dropped, and the next one is accepted.
        cut = true;
        firstEventId = String(g.status);
        proxy.cut();
        void proxy.restore();
      },
    });
    assert.ok(cut);
    assert.is(done.status, 'completed');
    const streams = rec.calls.filter((c) => c.url.endsWith(`/v1/generations/${id}/events`));
    assert.ok(streams.length >= 2, `the stream was opened again (${streams.length})`);
    assert.is(streams[0]!.headers.get('last-event-id'), null);
    const resumed = streams.at(-1)!.headers.get('last-event-id');
    assert.ok(resumed && Number(resumed) >= 1, `resumed from event id ${resumed} (first event: ${firstEventId})`);
    assert.not.ok(
      rec.calls.some((c) => c.url.endsWith(`/v1/generations/${id}`)),
      'the terminal state came on the resumed stream, not from a GET afterwards',
    );
  } finally {
    await proxy.close();
  }
});

it('wait polls when event streams are refused (429), and reports progress from the polls', async ({ p }) => {
  const refused = (url: string) =>
    url.endsWith('/events')
      ? new Response(JSON.stringify({ type: 'urn:itemgen:problem:too_many_streams', title: 'Too Many Requests', status: 429, code: 'too_many_streams', detail: 'no' }), {
          status: 429,
          headers: { 'content-type': 'application/problem+json', 'retry-after': '1' },
        })
      : undefined;
  const rec = recordingFetch(refused);
  const client = createItemgenClient({ baseUrl: p.url, fetch: rec.fetch });
  const { id } = await client.submit({ ...small, num_inference_steps: 2 });
  const statuses: string[] = [];
  const done = await client.wait(id, { pollIntervalMs: 50, timeoutMs: 60_000, onProgress: (g) => statuses.push(g.status) });
  assert.is(done.status, 'completed');
  assert.is(statuses.at(-1), 'completed');
  assert.is(rec.calls.filter((c) => c.url.endsWith('/events')).length, 1, 'one refused stream, then polls');
  assert.ok(rec.calls.filter((c) => c.url.endsWith(`/v1/generations/${id}`)).length >= 1);
});

it('rerun of image N submits its seed alone, with the same parameters otherwise', async ({ p }) => {
  const client = createItemgenClient({ baseUrl: p.url });
  const batch = await client.wait((await client.submit({ ...small, num_images: 2, seed: 4294967295 })).id, { timeoutMs: 60_000 });
  const rerun = await client.rerun(batch.id, { image: 1 });
  assert.is(rerun.params.num_images, 1);
  assert.is(rerun.params.seed, 0, 'image 1 of seed 2^32-1 has seed 0 (mod 2^32)');
  assert.equal({ ...rerun.params, seed: 0, num_images: 0 }, { ...batch.params, seed: 0, num_images: 0 }, 'otherwise the same parameters');
  const bad = await client.rerun(batch.id, { image: 2 }).catch((e: unknown) => e);
  assert.is((bad as ItemgenError).code, 'invalid_image');
  await client.wait(rerun.id, { timeoutMs: 60_000 });
});

it.run();

const idle = suite<{ t: TestGateway }>('the SDK against a gateway without a runner (generations stay pending)');
idle.before(async (ctx) => {
  ctx.t = await startTestGateway({ store: 'pglite', broker: 'memory' });
});
idle.after(async ({ t }) => t.stop());

idle('wait gives up at timeoutMs with wait_timeout; cancel ends it, and a second cancel is the 409 problem', async ({ t }) => {
  const client = createItemgenClient({ baseUrl: t.url });
  const { id } = await client.submit(small);
  const timedOut = await client.wait(id, { timeoutMs: 200 }).catch((e: unknown) => e);
  assert.instance(timedOut, ItemgenError);
  assert.is((timedOut as ItemgenError).code, 'wait_timeout');
  const waiting = client.wait(id, { timeoutMs: 30_000 });
  const canceled = await client.cancel(id);
  assert.is(canceled.status, 'canceled');
  assert.is((await waiting).status, 'canceled', 'a wait ends with the cancel');
  const again = await client.cancel(id).catch((e: unknown) => e);
  assert.is((again as ItemgenError).status, 409);
  assert.is((again as ItemgenError).code, 'already_finished');
});

idle('an aborted wait rejects with aborted', async ({ t }) => {
  const client = createItemgenClient({ baseUrl: t.url });
  const { id } = await client.submit(small);
  const ac = new AbortController();
  const waiting = client.wait(id, { signal: ac.signal }).catch((e: unknown) => e);
  ac.abort();
  const err = await waiting;
  assert.instance(err, ItemgenError);
  assert.is((err as ItemgenError).code, 'aborted');
  await client.cancel(id);
});

idle.run();

const offline = suite('the SDK without a server');

offline('verifyWebhook accepts what standardwebhooks signed and refuses a tampered body or signature', () => {
  const secret = `whsec_${Buffer.from('a secret of thirty-two bytes!!!!').toString('base64')}`;
  const body = JSON.stringify({ id: 'a1', status: 'completed' });
  const at = new Date();
  const signature = new Webhook(secret).sign('msg_1', at, body);
  const headers = { 'webhook-id': 'msg_1', 'webhook-timestamp': String(Math.floor(at.getTime() / 1000)), 'webhook-signature': signature };
  assert.equal(verifyWebhook(secret, headers, body), { id: 'a1', status: 'completed' });
  assert.equal(verifyWebhook(secret, new Headers(headers), new TextEncoder().encode(body)), { id: 'a1', status: 'completed' }, 'Fetch headers, bytes');
  for (const [what, h, b] of [
    ['tampered body', headers, body.replace('completed', 'failed')],
    ['other secret', headers, body],
    ['no signature', { ...headers, 'webhook-signature': '' }, body],
  ] as const) {
    const key = what === 'other secret' ? `whsec_${Buffer.from('another secret, 32 bytes long!!!').toString('base64')}` : secret;
    const err = (() => {
      try {
        verifyWebhook(key, h, b);
      } catch (e) {
        return e;
      }
    })();
    assert.instance(err, ItemgenError, what);
    assert.is((err as ItemgenError).code, 'webhook_invalid', what);
  }
});

offline('download follows a redirect to another origin without the API key, and sends it to the gateway', async () => {
  const rec = recordingFetch((url) => {
    if (url.startsWith('https://api.example')) return new Response(null, { status: 302, headers: { location: 'https://storage.example/signed?sig=1' } });
    if (url.startsWith('https://storage.example')) return new Response(new Uint8Array([137, 80, 78, 71]), { headers: { 'content-type': 'image/png' } });
    return new Response('unexpected', { status: 500 });
  });
  const client = createItemgenClient({ baseUrl: 'https://api.example', apiKey: 'ik_secret', fetch: rec.fetch });
  const bytes = await client.download('00000000-0000-4000-8000-000000000000', 1);
  assert.equal([...bytes], [137, 80, 78, 71]);
  assert.is(rec.calls[0]!.url, 'https://api.example/v1/generations/00000000-0000-4000-8000-000000000000/images/1');
  assert.is(rec.calls[0]!.headers.get('authorization'), 'Bearer ik_secret');
  assert.is(rec.calls[1]!.url, 'https://storage.example/signed?sig=1');
  assert.is(rec.calls[1]!.headers.get('authorization'), null, 'the key never leaves the gateway\'s origin');
});

offline('a gateway that cannot be reached is an ItemgenError network_error (status 0)', async () => {
  const client = createItemgenClient({ baseUrl: 'http://127.0.0.1:9', fetch: async () => { throw new TypeError('fetch failed'); } });
  const err = await client.get('00000000-0000-4000-8000-000000000000').catch((e: unknown) => e);
  assert.instance(err, ItemgenError);
  assert.is((err as ItemgenError).status, 0);
  assert.is((err as ItemgenError).code, 'network_error');
});

/** An event stream answer with these SSE blocks. */
const sse = (text: string) => new Response(new Blob([text]).stream(), { headers: { 'content-type': 'text/event-stream' } });
const ID = '00000000-0000-4000-8000-000000000000';
const view = (status: Generation['status'], step: number) => JSON.stringify({ id: ID, status, progress: { step, total: 4 }, params: small, images: [] });

offline('wait hands preview events to onPreview and progress to onProgress, in stream order', async () => {
  const stream = [
    `id: 2\nevent: status\ndata: ${view('processing', 0)}\n\n`,
    `event: preview\ndata: {"id":"${ID}","step":1,"url":"data:image/png;base64,iVBORw0KGgo="}\n\n`,
    `id: 3\nevent: progress\ndata: ${view('processing', 1)}\n\n`,
    `: keep-alive\n\nid: 4\nevent: status\ndata: ${view('completed', 4)}\n\n`,
  ].join('');
  const client = createItemgenClient({ baseUrl: 'https://api.example', fetch: async () => sse(stream) });
  const seen: string[] = [];
  const done = await client.wait(ID, {
    onProgress: (g) => seen.push(`${g.status}:${g.progress.step}`),
    onPreview: (p) => seen.push(`preview:${p.step}:${p.url.slice(0, 14)}`),
  });
  assert.is(done.status, 'completed');
  assert.equal(seen, ['processing:0', 'preview:1:data:image/png', 'processing:1', 'completed:4']);
});

offline('a stream that ends at once, every time, is given up for polling instead of reopened in a loop', async () => {
  let streams = 0;
  let polls = 0;
  const client = createItemgenClient({
    baseUrl: 'https://api.example',
    fetch: async (input) => {
      const url = input instanceof Request ? input.url : String(input);
      if (url.endsWith('/events')) return streams++, sse('');
      polls++;
      return new Response(view(polls < 5 ? 'processing' : 'completed', polls), { headers: { 'content-type': 'application/json' } });
    },
  });
  const done = await client.wait(ID, { pollIntervalMs: 1 });
  assert.is(done.status, 'completed');
  assert.is(streams, 3, 'three empty streams, then polls');
});

offline('delete sends DELETE with the key; a 409 is the problem', async () => {
  const rec = recordingFetch((url, init) =>
    init?.method === 'DELETE' && url.endsWith(ID)
      ? new Response(null, { status: 204 })
      : new Response(JSON.stringify({ status: 409, code: 'not_finished', detail: 'It is still running.' }), { status: 409, headers: { 'content-type': 'application/problem+json' } }),
  );
  const client = createItemgenClient({ baseUrl: 'https://api.example', apiKey: 'ik_1', fetch: rec.fetch });
  await client.delete(ID);
  assert.is(rec.calls[0]!.url, `https://api.example/v1/generations/${ID}`);
  assert.is(rec.calls[0]!.headers.get('authorization'), 'Bearer ik_1');
  const err = await client.delete('11111111-0000-4000-8000-000000000000').catch((e: unknown) => e);
  assert.is((err as ItemgenError).code, 'not_finished');
  assert.is((err as ItemgenError).detail, 'It is still running.');
});

offline('submit sends Prefer: wait / wait=N and the Idempotency-Key', async () => {
  const rec = recordingFetch(() => new Response(view('completed', 4), { status: 200, headers: { 'content-type': 'application/json' } }));
  const client = createItemgenClient({ baseUrl: 'https://api.example', apiKey: 'ik_1', fetch: rec.fetch });
  await client.submit(small, { wait: true, idempotencyKey: 'k1' });
  await client.submit(small, { wait: 4.2 });
  await client.submit(small);
  assert.equal(rec.calls.map((c) => c.headers.get('prefer')), ['wait', 'wait=5', null]);
  assert.is(rec.calls[0]!.headers.get('idempotency-key'), 'k1');
  assert.is(rec.calls[0]!.headers.get('authorization'), 'Bearer ik_1');
});

offline.run();
