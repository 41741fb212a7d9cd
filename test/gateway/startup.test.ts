// Who may start how: open only on loopback with no keys; anywhere else authentication is required.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigError } from '../../src/core/config.ts';
import { RUNNER_TOKEN, startTestGateway } from '../helpers/gateway.ts';

test('loopback with no keys runs open: requests without a key act as one anonymous owner', async () => {
  const t = await startTestGateway({ store: 'postgres' });
  try {
    assert.ok(t.gw.settings.open);
    const res = await t.call('POST', '/v1/generations', { body: { prompt: 'a key' } });
    assert.is(res.status, 202);
    const id = ((await res.json()) as any).id;
    assert.is((await t.call('GET', `/v1/generations/${id}`)).status, 200);
  } finally {
    await t.stop();
  }
});

test('loopback with keys configured requires a key', async () => {
  const t = await startTestGateway({ store: 'postgres', keys: [{ name: 'k' }] });
  try {
    assert.not.ok(t.gw.settings.open);
    assert.is((await t.call('POST', '/v1/generations', { body: { prompt: 'x' } })).status, 401);
  } finally {
    await t.stop();
  }
});

test('a non-loopback address without keys or without a runner token refuses to start', async () => {
  for (const env of [{ HOST: '0.0.0.0' } as Record<string, string>, { HOST: '0.0.0.0', RUNNER_TOKEN: '' }]) {
    try {
      await startTestGateway({ store: 'postgres', env });
      assert.unreachable('started without authentication');
    } catch (err) {
      assert.instance(err, ConfigError);
      assert.match((err as Error).message, /without authentication|RUNNER_TOKEN/);
    }
  }
  try {
    await startTestGateway({ store: 'postgres', keys: [{ name: 'k' }], env: { HOST: '0.0.0.0', RUNNER_TOKEN: '' } });
    assert.unreachable('started without a runner token');
  } catch (err) {
    assert.match((err as Error).message, /RUNNER_TOKEN is required/);
  }
});

test('off loopback /metrics needs the runner token (Cloud Run is reachable from the internet); on loopback it is open', async () => {
  const t = await startTestGateway({ store: 'postgres', keys: [{ name: 'k' }], env: { HOST: '0.0.0.0' } });
  try {
    const anonymous = await t.call('GET', '/metrics');
    assert.is(anonymous.status, 401);
    assert.is(anonymous.headers.get('content-type'), 'application/problem+json');
    assert.match(((await anonymous.json()) as { detail: string }).detail, /runner token/);
    assert.is((await t.call('GET', '/metrics', { key: t.keys.k })).status, 401, 'an API key is not enough');
    const scraped = await t.call('GET', '/metrics', { key: RUNNER_TOKEN });
    assert.is(scraped.status, 200);
    assert.match(await scraped.text(), /itemgen_http_requests_total/);
  } finally {
    await t.stop();
  }
  const local = await startTestGateway({ store: 'postgres', keys: [{ name: 'k' }] });
  try {
    assert.is((await local.call('GET', '/metrics')).status, 200);
  } finally {
    await local.stop();
  }
});

test.run();
