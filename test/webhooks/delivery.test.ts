// Webhooks end to end: a real gateway on PostgreSQL, runners played through the internal API, and
// a real receiver on loopback (the gateway listens on loopback, so its policy allows http there).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Webhook } from 'standardwebhooks';
import { startGateway } from '../../src/gateway/service.ts';
import type { Queryable } from '../../src/store/types.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { submit } from '../helpers/submit.ts';
import { eventually, startReceiver, type Receiver } from './receiver.ts';

const it = suite<{ t: TestGateway; alice: string; bob: string; hook: Receiver }>('webhooks delivered to a real receiver');

it.before(async (ctx) => {
  ctx.t = await startTestGateway({
    store: 'postgres',
    keys: [{ name: 'alice' }, { name: 'bob' }],
    env: { WEBHOOK_RETRY_BASE_MS: '5', WEBHOOK_TIMEOUT_MS: '5000', WEBHOOK_CONCURRENCY: '2' },
  });
  ctx.alice = ctx.t.keys.alice!;
  ctx.bob = ctx.t.keys.bob!;
});
it.after(({ t }) => t.stop());
it.before.each(async (ctx) => {
  ctx.hook = await startReceiver();
});
it.after.each(({ hook }) => hook.close());

const json = async (res: Response) => {
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text) as any };
};

const claim = async (t: TestGateway, id: string) => assert.is((await t.runner(`/generations/${id}/claim`, { runner_id: 'r1' })).status, 200);
const progress = async (t: TestGateway, id: string, step: number) =>
  assert.is((await t.runner(`/generations/${id}/progress`, { attempt: 1, step, total: 4 })).status, 200);
const complete = async (t: TestGateway, id: string) =>
  assert.is((await t.runner(`/generations/${id}/complete`, { attempt: 1, images: [{ key: `generated/${id}/0.png` }] })).status, 200);
const run = async (t: TestGateway, id: string) => {
  await claim(t, id);
  await complete(t, id);
};

const deliveries = async (t: TestGateway, key: string, id: string) => {
  const { status, body } = await json(await t.call('GET', `/v1/generations/${id}/webhook-deliveries`, { key }));
  assert.is(status, 200);
  return body.data as any[];
};
/** The attempts once `count` are recorded (the record follows the receiver's answer). */
const recorded = (t: TestGateway, key: string, id: string, count: number) => eventually(() => deliveries(t, key, id), (d) => d.length >= count);
const outboxRows = async (t: TestGateway | Queryable, id: string) =>
  ('gw' in t ? t.gw.db : t).query<{ id: string; event: string }>('SELECT id, event FROM webhook_outbox WHERE generation_id = $1', [id]);

it('the completed event carries GET /v1/generations/{id} and verifies with the key from the secret route', async ({ t, alice, hook }) => {
  const id = await submit(t, { prompt: 'a sword', num_inference_steps: 4, webhook: `${hook.url}/hook` }, alice);
  const submitted = await json(await t.call('GET', `/v1/generations/${id}`, { key: alice }));
  assert.is(submitted.body.webhook, `${hook.url}/hook`);
  assert.equal(submitted.body.webhook_events_filter, ['completed']);
  await run(t, id);
  const [got] = await hook.waitFor(1);
  const secret = await json(await t.call('GET', '/v1/webhooks/default/secret', { key: alice }));
  assert.is(secret.status, 200);
  assert.match(secret.body.key, /^whsec_[A-Za-z0-9+/]{32}$/);
  const verified = new Webhook(secret.body.key).verify(got!.body, got!.headers as Record<string, string>) as any;
  const view = await json(await t.call('GET', `/v1/generations/${id}`, { key: alice }));
  assert.equal(verified, view.body);
  assert.is(verified.status, 'completed');
  assert.is(got!.path, '/hook');
  assert.match(String(got!.headers['webhook-id']), /^msg_[0-9a-f-]{36}$/);
  assert.match(String(got!.headers['webhook-signature']), /^v1,[A-Za-z0-9+/=]+$/);
  assert.is(got!.headers['content-type'], 'application/json');
  assert.match(String(got!.headers['user-agent']), /^itemgen-webhooks\//);
  // Another key's secret does not verify it; the secret is stable.
  const bobs = await json(await t.call('GET', '/v1/webhooks/default/secret', { key: t.keys.bob! }));
  assert.is.not(bobs.body.key, secret.body.key);
  assert.throws(() => new Webhook(bobs.body.key).verify(got!.body, got!.headers as Record<string, string>));
  assert.is((await json(await t.call('GET', '/v1/webhooks/default/secret', { key: alice }))).body.key, secret.body.key);

  const [d] = await recorded(t, alice, id, 1);
  assert.is(d.status_code, 200);
  assert.is(d.event, 'completed');
  assert.is(d.webhook_id, got!.headers['webhook-id']);
  assert.is(d.error, null);
  assert.is(d.will_retry, false);
  assert.type(d.duration_ms, 'number');
  assert.ok(Date.parse(d.attempted_at) > 0);
  assert.is((await outboxRows(t, id)).length, 0);
  const metrics = await (await fetch(`${t.url}/metrics`)).text();
  assert.match(metrics, /itemgen_webhook_deliveries_total\{outcome="delivered"\} [1-9]/);
});

it('a host name connects through the checked lookup (localhost, allowed on loopback)', async ({ t, alice, hook }) => {
  const webhook = hook.url.replace('127.0.0.1', 'localhost');
  const id = await submit(t, { prompt: 'a torch', num_inference_steps: 4, webhook }, alice);
  await run(t, id);
  const [got] = await hook.waitFor(1);
  assert.is(JSON.parse(got!.body).webhook, webhook);
  assert.is((await recorded(t, alice, id, 1))[0].status_code, 200);
});

it('the filter decides which events are sent: start, progress and completed', async ({ t, alice, hook }) => {
  const id = await submit(t, { prompt: 'a bow', num_inference_steps: 4, webhook: hook.url, webhook_events_filter: ['start', 'progress', 'completed'] }, alice);
  await claim(t, id);
  await hook.waitFor(1);
  await recorded(t, alice, id, 1);
  await progress(t, id, 1);
  await hook.waitFor(2);
  await recorded(t, alice, id, 2);
  await complete(t, id);
  await hook.waitFor(3);
  const d = await recorded(t, alice, id, 3);
  assert.equal(d.map((x) => x.event).reverse(), ['start', 'progress', 'completed']);
  assert.equal(hook.received.map((r) => JSON.parse(r.body).status), ['processing', 'processing', 'completed']);
  assert.is(JSON.parse(hook.received[1]!.body).progress.step, 1);

  const onlyStart = await submit(t, { prompt: 'a cap', num_inference_steps: 4, webhook: hook.url, webhook_events_filter: ['start'] }, alice);
  await claim(t, onlyStart);
  await progress(t, onlyStart, 1);
  await complete(t, onlyStart);
  await recorded(t, alice, onlyStart, 1);
  assert.equal((await deliveries(t, alice, onlyStart)).map((x) => x.event), ['start']);
  assert.is((await outboxRows(t, onlyStart)).length, 0, 'no progress or completed message was written');

  const bad = await json(await t.call('POST', '/v1/generations', { key: alice, body: { prompt: 'x', webhook: hook.url, webhook_events_filter: ['finished'] } }));
  assert.is(bad.status, 422);
  const empty = await json(await t.call('POST', '/v1/generations', { key: alice, body: { prompt: 'x', webhook: hook.url, webhook_events_filter: [] } }));
  assert.is(empty.status, 422);
  const orphan = await json(await t.call('POST', '/v1/generations', { key: alice, body: { prompt: 'x', webhook_events_filter: ['start'] } }));
  assert.is(orphan.status, 422);
  assert.is(orphan.body.errors[0].path, 'webhook_events_filter');
});

it('canceling sends the completed event too; the webhook counts in the Idempotency-Key hash', async ({ t, alice, hook }) => {
  const id = await submit(t, { prompt: 'a coin', num_inference_steps: 4, webhook: hook.url }, alice);
  assert.is((await t.call('POST', `/v1/generations/${id}/cancel`, { key: alice })).status, 200);
  const [got] = await hook.waitFor(1);
  assert.is(JSON.parse(got!.body).status, 'canceled');
  assert.is((await recorded(t, alice, id, 1))[0].event, 'completed');

  const headers = { 'idempotency-key': 'webhook-hash-1' };
  const body = { prompt: 'a coin', webhook: `${hook.url}/a` };
  const first = await json(await t.call('POST', '/v1/generations', { key: alice, body, headers }));
  assert.is(first.status, 202);
  const replay = await t.call('POST', '/v1/generations', { key: alice, body, headers });
  assert.is(replay.headers.get('idempotent-replayed'), 'true');
  const other = await json(await t.call('POST', '/v1/generations', { key: alice, body: { ...body, webhook: `${hook.url}/b` }, headers }));
  assert.is(other.status, 422);
  assert.is(other.body.code, 'idempotency_key_reused');
  const filtered = await json(await t.call('POST', '/v1/generations', { key: alice, body: { ...body, webhook_events_filter: ['start'] }, headers }));
  assert.is(filtered.body.code, 'idempotency_key_reused');
});

it('a 500 is retried with the same webhook-id, then delivered', async ({ t, alice, hook }) => {
  hook.answer = (_, n) => (n === 0 ? { status: 500, body: 'boom' } : { status: 204 });
  const id = await submit(t, { prompt: 'a ring', num_inference_steps: 4, webhook: hook.url }, alice);
  await run(t, id);
  const [first, second] = await hook.waitFor(2);
  assert.is(second!.headers['webhook-id'], first!.headers['webhook-id']);
  const d = await recorded(t, alice, id, 2);
  assert.equal(d.map((x) => [x.attempt, x.status_code, x.will_retry]), [[2, 204, false], [1, 500, true]]);
  assert.is(d[1].error, 'HTTP 500: boom');
  assert.is((await outboxRows(t, id)).length, 0);
});

it('a 400 is not retried; neither is a redirect, which is not followed', async ({ t, alice, hook }) => {
  hook.answer = (r) => (r.path === '/bad' ? { status: 400, body: 'no' } : r.path === '/moved' ? { status: 302, headers: { location: `${hook.url}/elsewhere` } } : { status: 200 });
  const bad = await submit(t, { prompt: 'a shield', num_inference_steps: 4, webhook: `${hook.url}/bad` }, alice);
  const moved = await submit(t, { prompt: 'a shield', num_inference_steps: 4, webhook: `${hook.url}/moved` }, alice);
  await run(t, bad);
  await run(t, moved);
  const [b] = await recorded(t, alice, bad, 1);
  const [m] = await recorded(t, alice, moved, 1);
  // The message is removed in the transaction that records the attempt: nothing is left to retry.
  assert.is((await outboxRows(t, bad)).length, 0);
  assert.is((await outboxRows(t, moved)).length, 0);
  assert.equal([b.status_code, b.will_retry, b.error], [400, false, 'HTTP 400: no']);
  assert.equal([m.status_code, m.will_retry], [302, false]);
  assert.match(m.error, /redirect to .*\/elsewhere not followed/);
  assert.equal(hook.received.map((r) => r.path).sort(), ['/bad', '/moved']);
});

it('an answer is read 1 KB far: a receiver sending 1 MB without end is recorded at once', async ({ t, alice, hook }) => {
  hook.answer = () => (res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('x'.repeat(1 << 20));
  };
  const id = await submit(t, { prompt: 'a lamp', num_inference_steps: 4, webhook: hook.url }, alice);
  await run(t, id);
  const [d] = await recorded(t, alice, id, 1);
  assert.is(d.status_code, 200);
  assert.ok(d.duration_ms < 2500, `recorded after ${d.duration_ms} ms, the timeout is 5000`);
});

it('redeliver sends the message of an attempt again with the same webhook-id; unknown ones and other keys get 404', async ({ t, alice, bob, hook }) => {
  const id = await submit(t, { prompt: 'a key', num_inference_steps: 4, webhook: hook.url }, alice);
  await run(t, id);
  const [first] = await hook.waitFor(1);
  const [d] = await recorded(t, alice, id, 1);
  const res = await json(await t.call('POST', `/v1/generations/${id}/webhook-deliveries/${d.id}/redeliver`, { key: alice }));
  assert.is(res.status, 202);
  assert.is(res.body.webhook_id, first!.headers['webhook-id']);
  const [, again] = await hook.waitFor(2);
  assert.is(again!.headers['webhook-id'], first!.headers['webhook-id']);
  assert.is((await recorded(t, alice, id, 2)).length, 2);

  const unknown = '00000000-0000-4000-8000-000000000000';
  assert.is((await t.call('POST', `/v1/generations/${id}/webhook-deliveries/${unknown}/redeliver`, { key: alice })).status, 404);
  assert.is((await t.call('POST', `/v1/generations/${id}/webhook-deliveries/${d.id}/redeliver`, { key: bob })).status, 404);
  assert.is((await t.call('GET', `/v1/generations/${id}/webhook-deliveries`, { key: bob })).status, 404);
  assert.is((await t.call('GET', `/v1/generations/${id}/webhook-deliveries?limit=1000`, { key: alice })).status, 422);
  const page = await json(await t.call('GET', `/v1/generations/${id}/webhook-deliveries?limit=1`, { key: alice }));
  assert.is(page.body.data.length, 1);
  const rest = await json(await t.call('GET', `/v1/generations/${id}/webhook-deliveries?limit=1&cursor=${page.body.next_cursor}`, { key: alice }));
  assert.is(rest.body.data.length, 1);
  assert.is.not(rest.body.data[0].id, page.body.data[0].id);
  assert.is(rest.body.next_cursor, null);
});

it('progress is coalesced: one message per generation however many steps wait', async ({ t, alice, hook }) => {
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  // The first progress message is held by the receiver while the steps go on.
  hook.answer = () => (res) => void held.then(() => res.writeHead(200).end());
  const id = await submit(t, { prompt: 'a map', num_inference_steps: 30, webhook: hook.url, webhook_events_filter: ['progress'] }, alice);
  await claim(t, id);
  for (let step = 1; step <= 30; step++) {
    assert.is((await t.runner(`/generations/${id}/progress`, { attempt: 1, step, total: 30 })).status, 200);
    const rows = await outboxRows(t, id);
    assert.ok(rows.length <= 1, `${rows.length} messages after step ${step}`);
  }
  await hook.waitFor(1);
  release();
  // The message in flight when later steps came is sent again with the newest step.
  const got = await hook.waitFor(2);
  assert.is(JSON.parse(got[got.length - 1]!.body).progress.step, 30);
  await eventually(() => outboxRows(t, id), (r) => r.length === 0);
  assert.ok(hook.received.length <= 3, `${hook.received.length} requests for 30 steps`);
});

it('attempts in flight are bounded by WEBHOOK_CONCURRENCY; the rest wait in the outbox unleased', async ({ t, alice, hook }) => {
  const held: (() => void)[] = [];
  hook.answer = () => (res) => void held.push(() => res.writeHead(200).end());
  const ids: string[] = [];
  for (let n = 0; n < 4; n++) ids.push(await submit(t, { prompt: `a cup ${n}`, num_inference_steps: 4, webhook: hook.url }, alice));
  for (const id of ids) await run(t, id);
  await hook.waitFor(2);
  const rows = await t.gw.db.query<{ leased: boolean }>(
    'SELECT lease_until > clock_timestamp() AS leased FROM webhook_outbox WHERE generation_id = ANY($1::uuid[])',
    [ids],
  );
  assert.is(rows.length, 4, 'all four still to deliver');
  assert.is(rows.filter((r) => r.leased).length, 2, 'two in flight');
  hook.answer = () => ({ status: 200 });
  for (const release of held.splice(0)) release();
  await hook.waitFor(4);
  await eventually(async () => (await t.gw.db.query('SELECT 1 FROM webhook_outbox WHERE generation_id = ANY($1::uuid[])', [ids])).length, (n) => n === 0);
});

it('the OpenAPI document names the routes and describes the message and its headers', async ({ t }) => {
  const doc = (await (await fetch(`${t.url}/openapi.json`)).json()) as any;
  assert.is(doc.paths['/v1/webhooks/default/secret'].get.operationId, 'getWebhookSecret');
  assert.is(doc.paths['/v1/generations/{id}/webhook-deliveries'].get.operationId, 'listWebhookDeliveries');
  assert.is(doc.paths['/v1/generations/{id}/webhook-deliveries/{delivery}/redeliver'].post.operationId, 'redeliverWebhook');
  const hook = doc.webhooks.generationEvent.post;
  assert.equal(hook.parameters.map((p: any) => p.name).sort(), ['webhook-id', 'webhook-signature', 'webhook-timestamp']);
  assert.ok(hook.requestBody.content['application/json'].schema.$ref.endsWith('/Generation'));
  const submitBody = doc.components.schemas.GenerationRequest.properties;
  assert.is(submitBody.webhook.maxLength, 2048);
  assert.ok(submitBody.webhook_events_filter);
});

// Last: it stops the suite's gateway.
it('a message due when its gateway stops is delivered by the next one on the same database', async ({ t, alice, hook }) => {
  let firstStopped = false;
  hook.answer = () => (firstStopped ? { status: 200 } : { status: 503 });
  const id = await submit(t, { prompt: 'a gem', num_inference_steps: 4, webhook: hook.url }, alice);
  await run(t, id);
  const [first] = await hook.waitFor(1);
  await recorded(t, alice, id, 1);
  await t.gw.close();
  firstStopped = true;
  const before = hook.received.length;
  const next = await startGateway(t.config, { schema: t.schema! });
  try {
    const got = await hook.waitFor(before + 1);
    assert.is(got[before]!.headers['webhook-id'], first!.headers['webhook-id']);
    const left = await eventually(() => outboxRows(next.db, id), (r) => r.length === 0);
    assert.is(left.length, 0);
    const attempts = await next.db.query<{ status_code: number | null }>(
      'SELECT status_code FROM webhook_deliveries WHERE generation_id = $1 ORDER BY attempted_at DESC', [id]);
    assert.is(attempts[0]!.status_code, 200);
  } finally {
    await next.close();
  }
});

it.run();
