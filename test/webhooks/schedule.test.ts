// The retry schedule through a real gateway: a receiver that never answers is given up on at the
// timeout and retried; Retry-After is waited; a message failing past the retry window is given up.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { submit } from '../helpers/submit.ts';
import { eventually, startReceiver, type Receiver } from './receiver.ts';

const it = suite<{ t: TestGateway; key: string; hook: Receiver }>('webhook retry schedule');

it.before(async (ctx) => {
  ctx.t = await startTestGateway({
    store: 'postgres',
    keys: [{ name: 'alice' }],
    env: { WEBHOOK_RETRY_BASE_MS: '5', WEBHOOK_TIMEOUT_MS: '300', WEBHOOK_RETRY_WINDOW_MS: '1500' },
  });
  ctx.key = ctx.t.keys.alice!;
});
it.after(({ t }) => t.stop());
it.before.each(async (ctx) => {
  ctx.hook = await startReceiver();
});
it.after.each(({ hook }) => hook.close());

const finish = async (t: TestGateway, id: string) => {
  assert.is((await t.runner(`/generations/${id}/claim`, { runner_id: 'r1' })).status, 200);
  assert.is((await t.runner(`/generations/${id}/complete`, { attempt: 1, images: [{ key: `generated/${id}/0.png` }] })).status, 200);
};
const attempts = (t: TestGateway, key: string, id: string, done: (d: any[]) => boolean) =>
  eventually(async () => ((await (await t.call('GET', `/v1/generations/${id}/webhook-deliveries`, { key })).json()) as any).data as any[], done);

it('no answer within WEBHOOK_TIMEOUT_MS is a failed attempt, retried', async ({ t, key, hook }) => {
  hook.answer = (_, n) => (n === 0 ? () => {} : { status: 200 });
  const id = await submit(t, { prompt: 'a sword', num_inference_steps: 4, webhook: hook.url }, key);
  await finish(t, id);
  const d = await attempts(t, key, id, (x) => x.length >= 2);
  assert.equal(d.map((x) => x.status_code), [200, null]);
  assert.is(d[1].error, 'no answer within 300 ms');
  assert.is(d[1].will_retry, true);
  assert.ok(d[1].duration_ms >= 290 && d[1].duration_ms < 3000, `${d[1].duration_ms} ms`);
});

it('a 429 is retried no sooner than its Retry-After', async ({ t, key, hook }) => {
  hook.answer = (_, n) => (n === 0 ? { status: 429, headers: { 'retry-after': '1' } } : { status: 200 });
  const id = await submit(t, { prompt: 'a bow', num_inference_steps: 4, webhook: hook.url }, key);
  await finish(t, id);
  const d = await attempts(t, key, id, (x) => x.length >= 2);
  assert.equal(d.map((x) => x.status_code), [200, 429]);
  const waited = Date.parse(d[0].attempted_at) - Date.parse(d[1].attempted_at);
  assert.ok(waited >= 1000, `retried after ${waited} ms`);
});

it('a message still failing at the end of the retry window is given up', async ({ t, key, hook }) => {
  hook.answer = () => ({ status: 503 });
  const id = await submit(t, { prompt: 'a ring', num_inference_steps: 4, webhook: hook.url }, key);
  await finish(t, id);
  const d = await attempts(t, key, id, (x) => x.length > 0 && x[0].will_retry === false);
  assert.is(d[0].will_retry, false, 'the last attempt says it is the last');
  assert.ok(d.length >= 2, `${d.length} attempts`);
  assert.ok(d.slice(1).every((x) => x.will_retry), 'every earlier one was to be retried');
  assert.is((await t.gw.db.query('SELECT 1 FROM webhook_outbox WHERE generation_id = $1', [id])).length, 0);
  const metrics = await (await fetch(`${t.url}/metrics`)).text();
  assert.match(metrics, /itemgen_webhook_deliveries_total\{outcome="gave_up"\} 1/);
});

it.run();
