// The database going away: requests answer 503 database_unavailable quickly (nothing hangs), and
// service resumes by itself when it is back. Real PostgreSQL behind a TCP proxy we cut (the server
// gone: connections reset) or blackhole (a partition: nothing answers, as packets are dropped).
import postgres from 'postgres';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { DATABASE_URL } from '../helpers/services.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';

async function gatewayBehindProxy(env: Record<string, string> = {}): Promise<{ t: TestGateway; proxy: TcpProxy }> {
  const target = new URL(DATABASE_URL);
  const proxy = await startTcpProxy(target.hostname, Number(target.port || 5432));
  const viaProxy = new URL(DATABASE_URL);
  viaProxy.port = String(proxy.port);
  const t = await startTestGateway({ store: 'postgres', env: { DATABASE_URL: viaProxy.toString(), ...env } });
  return { t, proxy };
}

/** A request that must be answered; one that hangs fails the test instead of holding it. */
const answered = (t: TestGateway, method: string, route: string, body?: unknown) =>
  fetch(`${t.url}${route}`, {
    method,
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
    signal: AbortSignal.timeout(20_000),
  });

async function expectUnavailable(res: Response) {
  assert.is(res.status, 503);
  const problem = (await res.json()) as { code: string; detail: string };
  assert.is(problem.code, 'database_unavailable');
  assert.is(res.headers.get('retry-after'), '5');
  return problem;
}

test('database unreachable → 503 database_unavailable with Retry-After; recovers without a restart', async () => {
  const { t, proxy } = await gatewayBehindProxy();
  try {
    assert.is((await t.call('POST', '/v1/generations', { body: { prompt: 'before' } })).status, 202);
    proxy.cut();
    const problem = await expectUnavailable(await t.call('POST', '/v1/generations', { body: { prompt: 'during' } }));
    assert.match(problem.detail, /nothing was changed|may or may not/);
    const ready = await t.call('GET', '/readyz');
    assert.is(ready.status, 503);
    assert.is(((await ready.json()) as any).database, false);
    proxy.restore();
    assert.is((await t.call('POST', '/v1/generations', { body: { prompt: 'after' } })).status, 202);
    const prompts = (await t.gw.db.query('SELECT params->>\'prompt\' AS p FROM generations ORDER BY seq')).map((r) => r.p);
    assert.equal(prompts, ['before', 'after']);
  } finally {
    await t.stop();
    await proxy.close();
  }
});

test('database silent (a partition): submits, reads and /readyz answer 503 within the query timeout, and work again after', async () => {
  const { t, proxy } = await gatewayBehindProxy({ DATABASE_QUERY_TIMEOUT_MS: '400', DATABASE_CONNECT_TIMEOUT_MS: '400' });
  try {
    const created = await t.call('POST', '/v1/generations', { body: { prompt: 'before' } });
    const { id } = (await created.json()) as { id: string };
    proxy.blackhole();
    // A statement sent into the partition may still run once it heals: the answer says so.
    const submit = await expectUnavailable(await answered(t, 'POST', '/v1/generations', { prompt: 'during' }));
    assert.match(submit.detail, /may or may not have taken effect/);
    await expectUnavailable(await answered(t, 'GET', `/v1/generations/${id}`));
    // More requests than the pool has connections: the ones queued for a connection time out too.
    const burst = await Promise.all(Array.from({ length: 12 }, () => answered(t, 'GET', `/v1/generations/${id}`)));
    assert.equal(burst.map((r) => r.status), Array(12).fill(503));
    const ready = await answered(t, 'GET', '/readyz');
    assert.is(ready.status, 503);
    assert.is(((await ready.json()) as any).database, false);
    proxy.restore();
    const after = await answered(t, 'POST', '/v1/generations', { prompt: 'after' });
    assert.is(after.status, 202);
    assert.is((await answered(t, 'GET', `/v1/generations/${id}`)).status, 200);
  } finally {
    await t.stop();
    await proxy.close();
  }
});

test('the database cut while 64 clients submit (statements shared): every 202 is a stored generation', async () => {
  const { t, proxy } = await gatewayBehindProxy({
    DATABASE_QUERY_TIMEOUT_MS: '1000',
    DATABASE_CONNECT_TIMEOUT_MS: '300',
    DEFAULT_MAX_UNFINISHED: '100000',
    DEFAULT_MAX_UNFINISHED_COST: '1000000000',
  });
  try {
    const acked: string[] = [];
    let unavailable = 0;
    let cut = false;
    let acks200: () => void = () => {};
    const enoughAcks = new Promise<void>((resolve) => (acks200 = resolve));
    let seen503: () => void = () => {};
    const enough503 = new Promise<void>((resolve) => (seen503 = resolve));
    // Each client stops at its first 503 after the cut: by then the cut has hit statements in flight.
    const clients = Array.from({ length: 64 }, async (_, c) => {
      for (let i = 0; ; i++) {
        const res = await answered(t, 'POST', '/v1/generations', { prompt: `client ${c} submit ${i}` });
        if (res.status === 202) {
          acked.push(((await res.json()) as { id: string }).id);
          if (acked.length === 200) acks200();
        } else {
          assert.is(res.status, 503, await res.text());
          await res.arrayBuffer().catch(() => {});
          if (++unavailable === 64) seen503();
          if (cut) return;
        }
      }
    });
    await enoughAcks;
    proxy.cut();
    cut = true;
    await enough503;
    await Promise.all(clients);
    await proxy.restore();
    // Read past the proxy: the gateway's pool may still be reconnecting.
    const direct = postgres(DATABASE_URL, { max: 1, onnotice: () => {}, connection: { search_path: t.schema! } });
    try {
      const stored = new Set((await direct.unsafe('SELECT id FROM generations')).map((r) => String(r.id)));
      const lost = acked.filter((id) => !stored.has(id));
      assert.equal(lost, [], 'every acknowledged submit is stored');
    } finally {
      await direct.end();
    }
    assert.ok(acked.length >= 200);
  } finally {
    await t.stop();
    await proxy.close();
  }
});

test('requests keep coming while the database link is cut: once it is back, the pool serves them again', async () => {
  const { t, proxy } = await gatewayBehindProxy({ DATABASE_QUERY_TIMEOUT_MS: '300', DATABASE_CONNECT_TIMEOUT_MS: '300', DATABASE_POOL_SIZE: '4' });
  try {
    const { id } = (await (await t.call('POST', '/v1/generations', { body: { prompt: 'before' } })).json()) as { id: string };
    let cut = true;
    let unavailable = 0;
    let enough: () => void = () => {};
    const waited = new Promise<void>((resolve) => (enough = resolve));
    const load = Array.from({ length: 8 }, async () => {
      while (cut) {
        const res = await answered(t, 'GET', `/v1/generations/${id}`);
        if (res.status === 503 && ++unavailable === 24) enough();
        await res.arrayBuffer();
      }
    });
    proxy.cut();
    // Until many requests have waited for connections that could not open, and given up (503).
    await waited;
    proxy.restore();
    cut = false;
    await Promise.all(load);
    // The driver reconnects with a backoff of its own; within it, the pool must be whole again.
    let ok = 0;
    const until = Date.now() + 20_000;
    while (ok < 20 && Date.now() < until) {
      const res = await answered(t, 'GET', `/v1/generations/${id}`);
      ok = res.status === 200 ? ok + 1 : 0;
      await res.arrayBuffer();
    }
    assert.is(ok, 20, 'twenty requests in a row answered 200 after the database came back');
  } finally {
    await t.stop();
    await proxy.close();
  }
});

test.run();
