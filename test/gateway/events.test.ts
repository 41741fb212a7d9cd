// The event stream of one generation: every status and progress change, pushed through the
// database's change notifications, resumable with Last-Event-ID, ending after a terminal state.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { readSse, type SseEvent } from '../helpers/sse.ts';
import { submit } from '../helpers/submit.ts';
import { decodePng } from '../../src/runner/pipeline/png.ts';
import { latentPreview } from '../../src/runner/pipeline/latent-preview.ts';

/** A real preview PNG: 32×32 latents of a ramp. */
const previewPng = latentPreview(Float32Array.from({ length: 4 * 32 * 32 }, (_, i) => ((i % 1024) / 512) - 1), 32, 32);

for (const store of ['postgres', 'pglite'] as const) {
  const it = suite<{ t: TestGateway }>(`events on ${store}`);
  it.before(async (ctx) => {
    ctx.t = await startTestGateway({ store, sseKeepAliveMs: 50 });
  });
  it.after(({ t }) => t.stop());

  const potion = { prompt: 'a potion', num_inference_steps: 3 };

  it('streams the current state, every change, and ends after the terminal one', async ({ t }) => {
    const id = await submit(t, potion);
    const res = await t.call('GET', `/v1/generations/${id}/events`);
    assert.is(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const events: SseEvent[] = [];
    const stream = readSse(res);
    const next = async () => {
      const { value } = await stream.next();
      events.push(value!);
      return JSON.parse(value!.data);
    };
    assert.is((await next()).status, 'pending');
    await t.runner(`/generations/${id}/claim`, { runner_id: 'r' });
    assert.is((await next()).status, 'processing');
    for (const step of [1, 2, 3]) {
      await t.runner(`/generations/${id}/progress`, { attempt: 1, step, total: 3 });
      assert.equal((await next()).progress, { step, total: 3 });
    }
    await t.runner(`/generations/${id}/complete`, { attempt: 1, images: [{ key: 'k' }] });
    const last = await next();
    assert.is(last.status, 'completed');
    assert.is(last.images.length, 1);
    assert.equal(events.map((e) => e.event), ['status', 'status', 'progress', 'progress', 'progress', 'status']);
    const ids = events.map((e) => Number(e.id));
    assert.equal(ids, [...ids].sort((a, b) => a - b), 'event ids increase');
    assert.is((await stream.next()).done, true, 'stream ends after the terminal state');
  });

  it('Last-Event-ID resumes after what was seen; a finished generation replays only its final state', async ({ t }) => {
    const id = await submit(t, potion);
    await t.runner(`/generations/${id}/claim`, { runner_id: 'r' });
    const first = readSse(await t.call('GET', `/v1/generations/${id}/events`));
    const seen = (await first.next()).value!;
    assert.is(JSON.parse(seen.data).status, 'processing');
    await first.return(undefined);

    await t.runner(`/generations/${id}/progress`, { attempt: 1, step: 1, total: 3 });
    await t.runner(`/generations/${id}/fail`, { attempt: 1, code: 'gpu_lost', message: 'device lost' });
    const resumed: SseEvent[] = [];
    for await (const e of readSse(await t.call('GET', `/v1/generations/${id}/events`, { headers: { 'last-event-id': seen.id! } }))) {
      resumed.push(e);
    }
    assert.is(resumed.length, 1, 'one event: the latest state, newer than Last-Event-ID');
    assert.is(JSON.parse(resumed[0]!.data).status, 'failed');
    assert.ok(Number(resumed[0]!.id) > Number(seen.id));

    const again: SseEvent[] = [];
    for await (const e of readSse(await t.call('GET', `/v1/generations/${id}/events`, { headers: { 'last-event-id': resumed[0]!.id! } }))) {
      again.push(e);
    }
    assert.equal(again, [], 'nothing newer: the stream just ends');
  });

  it('previews: stored with the progress report, sent as preview events in both streams, linked while processing, gone once ended', async ({ t }) => {
    const id = await submit(t, potion);
    const res = await t.call('GET', `/v1/generations/${id}/events`);
    const keyStream = readSse(await t.call('GET', '/v1/events'));
    const stream = readSse(res);
    assert.is(JSON.parse((await stream.next()).value!.data).status, 'pending');
    await t.runner(`/generations/${id}/claim`, { runner_id: 'r' });
    assert.is(JSON.parse((await stream.next()).value!.data).status, 'processing');

    const preview = previewPng.toString('base64');
    assert.is((await t.runner(`/generations/${id}/progress`, { attempt: 1, step: 1, total: 3, preview })).status, 200);
    const progress = (await stream.next()).value!;
    assert.is(progress.event, 'progress');
    assert.equal(JSON.parse(progress.data).preview, { step: 1, url: `${t.url}/v1/generations/${id}/preview` });
    const event = (await stream.next()).value!;
    assert.is(event.event, 'preview');
    assert.is(event.id, undefined, 'a preview event has no id of its own: Last-Event-ID keeps the version');
    const data = JSON.parse(event.data);
    assert.is(data.id, id);
    assert.is(data.step, 1);
    assert.ok(data.url.startsWith('data:image/png;base64,'));
    const decoded = decodePng(Buffer.from(data.url.slice('data:image/png;base64,'.length), 'base64'));
    assert.equal([decoded.width, decoded.height], [32, 32]);

    // A step without a preview: a progress event only (the preview stays the one of step 1).
    await t.runner(`/generations/${id}/progress`, { attempt: 1, step: 2, total: 3 });
    const second = (await stream.next()).value!;
    assert.is(second.event, 'progress');
    assert.is(JSON.parse(second.data).preview.step, 1);

    const view = (await (await t.call('GET', `/v1/generations/${id}`)).json()) as any;
    assert.equal(view.preview, { step: 1, url: `${t.url}/v1/generations/${id}/preview` });
    const image = await t.call('GET', `/v1/generations/${id}/preview`);
    assert.is(image.status, 200);
    assert.is(image.headers.get('content-type'), 'image/png');
    assert.is(image.headers.get('cache-control'), 'no-store');
    assert.is(image.headers.get('x-preview-step'), '1');
    assert.ok(Buffer.from(await image.arrayBuffer()).equals(previewPng));

    // The stream of all of the key's generations carries it too.
    const kinds: string[] = [];
    for (;;) {
      const e = (await keyStream.next()).value!;
      kinds.push(e.event);
      if (e.event === 'preview') {
        assert.is(JSON.parse(e.data).id, id);
        break;
      }
    }
    await keyStream.return(undefined);

    const notPng = await t.runner(`/generations/${id}/progress`, { attempt: 1, step: 3, total: 3, preview: Buffer.from('GIF89a not a png').toString('base64') });
    assert.is(notPng.status, 422);
    const tooBig = await t.runner(`/generations/${id}/progress`, { attempt: 1, step: 3, total: 3, preview: Buffer.concat([previewPng, Buffer.alloc(40_000)]).toString('base64') });
    assert.ok([413, 422].includes(tooBig.status), `oversized preview refused: ${tooBig.status}`);

    await t.runner(`/generations/${id}/complete`, { attempt: 1, images: [{ key: 'k' }] });
    const done = (await (await t.call('GET', `/v1/generations/${id}`)).json()) as any;
    assert.is(done.status, 'completed');
    assert.is(done.preview, undefined, 'no preview link once completed');
    const gone = await t.call('GET', `/v1/generations/${id}/preview`);
    assert.is(gone.status, 404);
    assert.is(((await gone.json()) as any).code, 'preview_not_found');
    const rows = await t.gw.db.query('SELECT count(*) AS n FROM generation_previews WHERE generation_id = $1', [id]);
    assert.is(Number(rows[0]!.n), 0, 'the preview is removed when the generation ends');
    assert.is((await t.call('GET', `/v1/generations/00000000-0000-4000-8000-000000000000/preview`)).status, 404);
  });

  it('a generation claimed again loses the previous attempt\'s preview; a canceled one loses its own', async ({ t }) => {
    const id = await submit(t, potion);
    await t.runner(`/generations/${id}/claim`, { runner_id: 'r' });
    await t.runner(`/generations/${id}/progress`, { attempt: 1, step: 2, total: 3, preview: previewPng.toString('base64') });
    assert.is((await t.call('GET', `/v1/generations/${id}/preview`)).status, 200);
    await t.runner(`/generations/${id}/release`, { attempt: 1 });
    assert.is((await t.runner(`/generations/${id}/claim`, { runner_id: 'r2' })).status, 200);
    const view = (await (await t.call('GET', `/v1/generations/${id}`)).json()) as any;
    assert.is(view.preview, undefined);
    assert.is((await t.call('GET', `/v1/generations/${id}/preview`)).status, 404);
    await t.runner(`/generations/${id}/progress`, { attempt: 2, step: 1, total: 3, preview: previewPng.toString('base64') });
    assert.is((await t.call('GET', `/v1/generations/${id}/preview`)).headers.get('x-preview-step'), '1');
    assert.is((await t.call('POST', `/v1/generations/${id}/cancel`)).status, 200);
    assert.is((await t.call('GET', `/v1/generations/${id}/preview`)).status, 404);
    const rows = await t.gw.db.query('SELECT count(*) AS n FROM generation_previews WHERE generation_id = $1', [id]);
    assert.is(Number(rows[0]!.n), 0);
  });

  it('a canceled generation ends its stream', async ({ t }) => {
    const id = await submit(t, potion);
    const stream = readSse(await t.call('GET', `/v1/generations/${id}/events`));
    assert.is(JSON.parse((await stream.next()).value!.data).status, 'pending');
    await t.call('POST', `/v1/generations/${id}/cancel`);
    assert.is(JSON.parse((await stream.next()).value!.data).status, 'canceled');
    assert.is((await stream.next()).done, true);
  });

  it.run();
}
