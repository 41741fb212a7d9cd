// Event streams that hold whatever happens to LISTEN, the cap on streams per key across gateway
// instances, and the one stream of all of a key's generations (GET /v1/events).
import { suite, test } from 'uvu';
import * as assert from 'uvu/assert';
import { startGateway } from '../../src/gateway/service.ts';
import { openDb } from '../../src/store/openDb.ts';
import { claimGeneration } from '../../src/store/sql/claimGeneration.ts';
import { completeGeneration } from '../../src/store/sql/completeGeneration.ts';
import type { Db } from '../../src/store/types.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { DATABASE_URL } from '../helpers/services.ts';
import { readSse, type SseEvent } from '../helpers/sse.ts';
import { submit } from '../helpers/submit.ts';
import { startTcpProxy } from '../helpers/tcp-proxy.ts';

const KEEP_ALIVE_MS = 100;

/** The gateway's database through a connection of its own (as another instance or a runner's report would change it). */
const directDb = (t: TestGateway) => openDb({ databaseUrl: DATABASE_URL, dataDir: '', poolSize: 2, schema: t.schema! });

const potion = { prompt: 'a potion', num_inference_steps: 3 };

/** Every event of a stream, until it ends. */
async function untilEnd(res: Response): Promise<any[]> {
  const states: any[] = [];
  for await (const e of readSse(res)) states.push(JSON.parse(e.data));
  return states;
}

/** Completes a generation without its change being announced, as if LISTEN had missed it. */
async function completeSilently(db: Db, id: string) {
  await db.transaction(async (tx) => {
    await tx.exec("SET LOCAL session_replication_role = 'replica'");
    await claimGeneration(tx, id, 'r', 60);
    await completeGeneration(tx, id, 1, [{ key: `generated/${id}/0.png` }]);
  });
}

test('a terminal state LISTEN never announced still ends the stream, within a keep-alive interval', async () => {
  const t = await startTestGateway({ store: 'postgres', sseKeepAliveMs: KEEP_ALIVE_MS });
  const db = await directDb(t);
  try {
    const id = await submit(t, potion);
    const stream = readSse(await t.call('GET', `/v1/generations/${id}/events`));
    assert.is(JSON.parse((await stream.next()).value!.data).status, 'pending');
    await completeSilently(db, id);
    assert.is(JSON.parse((await stream.next()).value!.data).status, 'completed');
    assert.is((await stream.next()).done, true);
  } finally {
    await db.close();
    await t.stop();
  }
});

test('database link cut while jobs finish: after it is back every stream gets its terminal event and ends', async () => {
  const target = new URL(DATABASE_URL);
  const proxy = await startTcpProxy(target.hostname, Number(target.port || 5432));
  const viaProxy = new URL(DATABASE_URL);
  viaProxy.port = String(proxy.port);
  const t = await startTestGateway({
    store: 'postgres',
    sseKeepAliveMs: KEEP_ALIVE_MS,
    env: { DATABASE_URL: viaProxy.toString(), DATABASE_QUERY_TIMEOUT_MS: '300', DATABASE_CONNECT_TIMEOUT_MS: '300', MAX_STREAMS_PER_KEY: '100' },
  });
  const db = await directDb(t);
  try {
    const ids = await Promise.all(Array.from({ length: 8 }, () => submit(t, potion)));
    const streams = await Promise.all(ids.flatMap((id) => [0, 1, 2].map(() => t.call('GET', `/v1/generations/${id}/events`))));
    const ends = streams.map(untilEnd);
    proxy.cut();
    // While the gateway cannot see the database, every job finishes (notifications go nowhere).
    for (const id of ids) await completeSilently(db, id);
    proxy.restore();
    // Each stream ended (untilEnd returned), its last event the terminal state (its first read may
    // have come after the cut: then that is its only event).
    const all = await Promise.all(ends);
    assert.is(all.length, 24);
    for (const states of all) assert.is(states.at(-1).status, 'completed');
  } finally {
    await db.close();
    await t.stop();
    await proxy.close();
  }
});

test('streams per key are capped across gateway instances: 429 with Retry-After; a closed one frees its slot', async () => {
  const t = await startTestGateway({ store: 'postgres', keys: [{ name: 'a' }, { name: 'b' }], sseKeepAliveMs: KEEP_ALIVE_MS, env: { MAX_STREAMS_PER_KEY: '2' } });
  // A second instance of the same service: same database, its own process state.
  const other = await startGateway(t.config, { schema: t.schema!, sseKeepAliveMs: KEEP_ALIVE_MS });
  const a = t.keys.a!;
  try {
    const id = await submit(t, potion, a);
    const opened = [
      await t.call('GET', `/v1/generations/${id}/events`, { key: a }),
      await fetch(`${other.url}/v1/events`, { headers: { authorization: `Bearer ${a}` } }),
    ];
    assert.equal(opened.map((r) => r.status), [200, 200]);
    for (const url of [t.url, other.url]) {
      const refused = await fetch(`${url}/v1/events`, { headers: { authorization: `Bearer ${a}` } });
      assert.is(refused.status, 429);
      assert.is(refused.headers.get('content-type'), 'application/problem+json');
      assert.ok(Number(refused.headers.get('retry-after')) > 0);
      const problem = (await refused.json()) as any;
      assert.equal([problem.code, problem.limit], ['too_many_streams', 2]);
    }
    assert.is((await t.call('GET', '/v1/events', { key: t.keys.b })).status, 200, 'another key has its own slots');
    await opened[1]!.body!.cancel();
    // The slot is free once the server has seen the client go: try until it has.
    let again: Response;
    do again = await t.call('GET', `/v1/generations/${id}/events`, { key: a });
    while (again.status === 429 && (await again.body?.cancel(), true));
    assert.is(again.status, 200);
  } finally {
    await other.close();
    await t.stop();
  }
});

const it = suite<{ t: TestGateway; db: Db }>('GET /v1/events: all of a key\'s generations on one stream');
it.before(async (ctx) => {
  ctx.t = await startTestGateway({ store: 'postgres', keys: [{ name: 'mine' }, { name: 'theirs' }], sseKeepAliveMs: KEEP_ALIVE_MS });
  ctx.db = await directDb(ctx.t);
});
it.after(async ({ t, db }) => {
  await db.close();
  await t.stop();
});

it('the unfinished ones first, then every change of each; another key\'s never; resumable from Last-Event-ID', async ({ t }) => {
  const mine = t.keys.mine!;
  const [x, y] = [await submit(t, potion, mine), await submit(t, potion, mine)];
  await submit(t, potion, t.keys.theirs!);
  const res = await t.call('GET', '/v1/events', { key: mine });
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  const stream = readSse(res);
  const events: SseEvent[] = [];
  const next = async () => {
    const e = (await stream.next()).value!;
    events.push(e);
    return { event: e.event, id: JSON.parse(e.data).id, status: JSON.parse(e.data).status, step: JSON.parse(e.data).progress.step };
  };
  const initial = [await next(), await next()];
  assert.equal(new Set(initial.map((e) => e.id)), new Set([x, y]));
  assert.ok(initial.every((e) => e.event === 'status' && e.status === 'pending'));

  await t.runner(`/generations/${x}/claim`, { runner_id: 'r' });
  assert.equal(await next(), { event: 'status', id: x, status: 'processing', step: 0 });
  await t.runner(`/generations/${x}/progress`, { attempt: 1, step: 1, total: 3 });
  assert.equal(await next(), { event: 'progress', id: x, status: 'processing', step: 1 });
  await t.runner(`/generations/${x}/complete`, { attempt: 1, images: [{ key: `generated/${x}/0.png` }] });
  assert.equal(await next(), { event: 'status', id: x, status: 'completed', step: 3 });
  const seen = events.at(-1)!.id!;
  await stream.return(undefined);

  // While no stream is open: y fails.
  await t.runner(`/generations/${y}/claim`, { runner_id: 'r' });
  await t.runner(`/generations/${y}/fail`, { attempt: 1, code: 'gpu_lost', message: 'device lost' });
  const resumed = readSse(await t.call('GET', '/v1/events', { key: mine, headers: { 'last-event-id': seen } }));
  let last: any;
  do last = JSON.parse((await resumed.next()).value!.data);
  while (last.id !== y);
  assert.is(last.status, 'failed', 'the change made while away arrives');
  await resumed.return(undefined);
});

it('a change LISTEN never announced still arrives, within a keep-alive interval', async ({ t, db }) => {
  const mine = t.keys.mine!;
  const z = await submit(t, potion, mine);
  const stream = readSse(await t.call('GET', '/v1/events', { key: mine }));
  let state: any;
  do state = JSON.parse((await stream.next()).value!.data);
  while (state.id !== z);
  await completeSilently(db, z);
  do state = JSON.parse((await stream.next()).value!.data);
  while (state.id !== z);
  assert.is(state.status, 'completed');
  await stream.return(undefined);
});

it.run();
test.run();
