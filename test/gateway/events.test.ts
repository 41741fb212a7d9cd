// The event stream of one generation: every status and progress change, pushed through the
// database's change notifications, resumable with Last-Event-ID, ending after a terminal state.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { readSse, type SseEvent } from '../helpers/sse.ts';
import { submit } from '../helpers/submit.ts';

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
