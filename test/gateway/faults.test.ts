// The database going away: submits answer 503 (nothing half-done), and service resumes by
// itself when it is back. Real PostgreSQL behind a TCP proxy we cut.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startTestGateway } from '../helpers/gateway.ts';
import { DATABASE_URL } from '../helpers/services.ts';
import { startTcpProxy } from '../helpers/tcp-proxy.ts';

test('database unreachable → 503 database_unavailable with Retry-After; recovers without a restart', async () => {
  const target = new URL(DATABASE_URL);
  const proxy = await startTcpProxy(target.hostname, Number(target.port || 5432));
  const viaProxy = new URL(DATABASE_URL);
  viaProxy.port = String(proxy.port);
  const t = await startTestGateway({ store: 'postgres', env: { DATABASE_URL: viaProxy.toString() } });
  try {
    assert.is((await t.call('POST', '/v1/generations', { body: { prompt: 'before' } })).status, 202);
    proxy.cut();
    const res = await t.call('POST', '/v1/generations', { body: { prompt: 'during' } });
    assert.is(res.status, 503);
    assert.is(((await res.json()) as any).code, 'database_unavailable');
    assert.is(res.headers.get('retry-after'), '5');
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

test.run();
