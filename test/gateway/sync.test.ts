// Synchronous mode of POST /v1/generations (Prefer: wait, RFC 7240), on PGlite and the in-process
// queue: the runner's side is played through the internal API once the job is delivered.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeJobMessage } from '../../src/core/message.ts';
import { awaitFinished } from '../../src/gateway/await-finished.ts';
import type { ChangeFeed } from '../../src/gateway/changes.ts';
import { preferredWait } from '../../src/gateway/prefer.ts';
import type { Generation } from '../../src/store/generation.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';

const it = suite<{ t: TestGateway; alice: string }>('synchronous mode: Prefer: wait');
const KEEP_ALIVE_MS = 300;

it.before(async (ctx) => {
  ctx.t = await startTestGateway({ store: 'pglite', broker: 'memory', keys: [{ name: 'alice' }], sseKeepAliveMs: KEEP_ALIVE_MS, env: { MAX_STREAMS_PER_KEY: '2' } });
  ctx.alice = ctx.t.keys.alice!;
});
it.after(({ t }) => t.stop());

/** The id of the next job the gateway publishes (left unacknowledged: nobody else consumes). */
function nextJobId(t: TestGateway): Promise<string> {
  return new Promise((resolve) => {
    const consumer = t.gw.queue.consume(
      async (d) => {
        (await consumer).cancel();
        d.ack();
        resolve(decodeJobMessage(d.body).id);
      },
      { prefetch: 1 },
    );
  });
}

/** Resolves once `check` holds, re-checking every few ms for at most `ms` (a condition, not a fixed sleep). */
async function until(check: () => Promise<boolean>, ms = 5000) {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const heldStreams = async (t: TestGateway) => Number((await t.gw.db.query('SELECT count(*) AS n FROM event_streams WHERE expires_at > now()'))[0]!.n);

it('Prefer parsing: bare wait is 60 s, wait=N up to 60 (more is capped), others ignored, a bad number refused', () => {
  assert.is(preferredWait(undefined), null);
  assert.is(preferredWait('respond-async'), null);
  assert.is(preferredWait('wait'), 60);
  assert.is(preferredWait('Wait=5'), 5);
  assert.is(preferredWait('respond-async, wait=10'), 10);
  assert.is(preferredWait('wait="7"'), 7);
  assert.is(preferredWait('wait=600'), 60);
  for (const bad of ['wait=0', 'wait=-1', 'wait=1.5', 'wait=soon']) {
    assert.throws(() => preferredWait(bad), (err: { status: number; code: string }) => err.status === 400 && err.code === 'invalid_prefer', bad);
  }
});

it('a job that finishes while held answers 200 with the finished generation and Preference-Applied', async ({ t, alice }) => {
  const delivered = nextJobId(t);
  const answer = t.call('POST', '/v1/generations', { key: alice, body: { prompt: 'a glowing sword, tsuki_advtr', num_inference_steps: 4 }, headers: { prefer: 'wait=30' } });
  const id = await delivered;
  assert.is((await t.runner(`/generations/${id}/claim`, { runner_id: 'r' })).status, 200);
  assert.is((await t.runner(`/generations/${id}/progress`, { attempt: 1, step: 2, total: 4 })).status, 200);
  assert.is((await t.runner(`/generations/${id}/complete`, { attempt: 1, images: [{ key: `generated/${id}/0.png` }] })).status, 200);
  const res = await answer;
  assert.is(res.status, 200);
  assert.is(res.headers.get('preference-applied'), 'wait=30');
  assert.match(res.headers.get('vary') ?? '', /Prefer/);
  assert.is(res.headers.get('location'), `${t.url}/v1/generations/${id}`);
  const g = (await res.json()) as any;
  assert.is(g.id, id);
  assert.is(g.status, 'completed');
  assert.equal(g.images, [
    { index: 0, url: `${t.url}/v1/generations/${id}/images/0`, thumbnail_url: `${t.url}/v1/generations/${id}/images/0/thumbnail`, seed: g.params.seed },
  ]);
  await until(async () => (await heldStreams(t)) === 0);
});

it('wait=1 with no runner: 202 pending after the wait, the generation kept; an idempotent replay waits too', async ({ t, alice }) => {
  const headers = { prefer: 'wait=1', 'idempotency-key': 'sync-1' };
  const started = Date.now();
  const res = await t.call('POST', '/v1/generations', { key: alice, body: { prompt: 'a helm' }, headers });
  assert.is(res.status, 202);
  assert.ok(Date.now() - started >= 900, 'held about a second');
  assert.is(res.headers.get('preference-applied'), 'wait=1');
  const g = (await res.json()) as any;
  assert.is(g.status, 'pending');
  assert.is(((await (await t.call('GET', `/v1/generations/${g.id}`, { key: alice })).json()) as any).status, 'pending', 'accepted before the wait');

  // The replay of a generation that is canceled meanwhile answers 200 at once.
  assert.is((await t.call('POST', `/v1/generations/${g.id}/cancel`, { key: alice })).status, 200);
  const replay = await t.call('POST', '/v1/generations', { key: alice, body: { prompt: 'a helm' }, headers: { ...headers, prefer: 'wait' } });
  assert.is(replay.status, 200);
  assert.is(replay.headers.get('idempotent-replayed'), 'true');
  assert.is(replay.headers.get('preference-applied'), 'wait=60');
  assert.is(((await replay.json()) as any).status, 'canceled');

  // Without Prefer, the replay of that finished generation is the 202 every submit was before
  // synchronous mode (found by npm run chaos: its client retries a submit and expects 202).
  const plain = await t.call('POST', '/v1/generations', { key: alice, body: { prompt: 'a helm' }, headers: { 'idempotency-key': 'sync-1' } });
  assert.is(plain.status, 202);
  assert.is(plain.headers.get('idempotent-replayed'), 'true');
  assert.is(plain.headers.get('preference-applied'), null);
  assert.is(((await plain.json()) as any).status, 'canceled');
});

it('without Prefer nothing waits (202, no Preference-Applied); a bad wait is a 400 problem naming the header, before anything is created', async ({ t, alice }) => {
  const res = await t.call('POST', '/v1/generations', { key: alice, body: { prompt: 'a ring' } });
  assert.is(res.status, 202);
  assert.is(res.headers.get('preference-applied'), null);
  const before = await t.countGenerations();
  const bad = await t.call('POST', '/v1/generations', { key: alice, body: { prompt: 'a ring' }, headers: { prefer: 'wait=0' } });
  assert.is(bad.status, 400);
  assert.match(bad.headers.get('content-type') ?? '', /problem\+json/);
  const problem = (await bad.json()) as any;
  assert.is(problem.code, 'invalid_prefer');
  assert.match(problem.detail, /Prefer/);
  assert.is(await t.countGenerations(), before);
});

it('held answers count as event streams: with all slots held the answer comes at once without Preference-Applied; a client leaving frees its slot', async ({ t, alice }) => {
  const clients = [new AbortController(), new AbortController()];
  const held = clients.map((client) =>
    fetch(`${t.url}/v1/generations`, {
      method: 'POST',
      signal: client.signal,
      headers: { authorization: `Bearer ${alice}`, 'content-type': 'application/json', prefer: 'wait=60' },
      body: JSON.stringify({ prompt: 'a lamp' }),
    }).catch((err: Error) => err.name),
  );
  await until(async () => (await heldStreams(t)) === 2);
  const third = await t.call('POST', '/v1/generations', { key: alice, body: { prompt: 'a lamp' }, headers: { prefer: 'wait=60' } });
  assert.is(third.status, 202);
  assert.is(third.headers.get('preference-applied'), null, 'not applied: the key holds its most streams');
  clients[0]!.abort();
  await until(async () => (await heldStreams(t)) === 1);
  clients[1]!.abort();
  await until(async () => (await heldStreams(t)) === 0);
  assert.equal(await Promise.all(held), ['AbortError', 'AbortError']);
});

/** A change feed that counts its subscribers and lets the test announce changes. */
function fakeFeed() {
  const subscribers = new Set<() => void>();
  const feed: ChangeFeed = {
    subscribe: (_id, onChange) => {
      subscribers.add(onChange);
      return () => subscribers.delete(onChange);
    },
    subscribeOwner: () => () => {},
    close: async () => {},
  };
  return { feed, subscribers, announce: () => [...subscribers].forEach((fn) => fn()) };
}

const generation = (status: Generation['status']) => ({ id: '5b0c6f1e-8d7a-4c1e-9a53-2f1d7c0e9b41', status }) as Generation;

it('awaitFinished: woken by a change, re-reads on each tick and at the deadline, and unsubscribes however it ends', async () => {
  const { feed, subscribers, announce } = fakeFeed();
  let status: Generation['status'] = 'pending';
  let reads = 0;
  const read = async () => (reads++, generation(status));
  const base = { changes: feed, read, current: generation('pending') };

  // A change ends the wait long before the tick or the deadline.
  const woken = awaitFinished({ ...base, deadline: Date.now() + 60_000, tickMs: 60_000, signal: new AbortController().signal });
  await until(async () => reads === 1);
  assert.is(subscribers.size, 1);
  status = 'completed';
  announce();
  assert.is((await woken).status, 'completed');
  assert.is(subscribers.size, 0);

  // No change at all: a read per tick, a last one at the deadline, then the generation as it is.
  status = 'pending';
  reads = 0;
  const ticked = await awaitFinished({ ...base, deadline: Date.now() + 250, tickMs: 100, signal: new AbortController().signal });
  assert.is(ticked.status, 'pending');
  assert.ok(reads >= 3 && reads <= 5, `reads: ${reads}`);
  assert.is(subscribers.size, 0);

  // The client leaving ends it at once.
  const client = new AbortController();
  const left = awaitFinished({ ...base, deadline: Date.now() + 60_000, tickMs: 60_000, signal: client.signal });
  await until(async () => subscribers.size === 1);
  client.abort();
  assert.is((await left).status, 'pending');
  assert.is(subscribers.size, 0);
});

it.run();
