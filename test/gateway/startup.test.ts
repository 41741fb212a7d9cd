// Who may start how: open only on loopback with no keys; elsewhere locked until the first key exists,
// and never without the runner token.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigError } from '../../src/core/config.ts';
import { createKey } from '../../src/gateway/keys.ts';
import { runKeysCli } from '../../src/gateway/keys-cli.ts';
import { RUNNER_TOKEN, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { parseResponse, rawConnection } from '../helpers/raw-http.ts';

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

test('started open, a key another process creates ends the open mode within API_KEY_CACHE_MS; the open history becomes that key\'s', async () => {
  const t = await startTestGateway({ store: 'postgres', env: { API_KEY_CACHE_MS: '0' } });
  try {
    const made = ((await (await t.call('POST', '/v1/generations', { body: { prompt: 'a key' } })).json()) as any).id;
    assert.is((await t.call('GET', '/v1/generations')).status, 200);
    // As `npm run keys -- create` on the same database would, from another process.
    const created = await createKey(t.gw.db, { name: 'first' }, 10);
    assert.is(created.adopted_generations, 1);
    const refused = await t.call('GET', '/v1/generations');
    assert.is(refused.status, 401, 'no longer open');
    assert.is(refused.headers.get('content-type'), 'application/problem+json');
    const mine = await t.call('GET', `/v1/generations/${made}`, { key: created.key });
    assert.is(mine.status, 200, 'what was made in the open mode is reachable with the key');
    const second = await createKey(t.gw.db, { name: 'second' }, 10);
    assert.is(second.adopted_generations, 0, 'history moves to the first key only: none is left without one');
    assert.is((await t.call('GET', `/v1/generations/${made}`, { key: second.key })).status, 404);
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

test('off loopback an empty database starts locked: healthy, ready, every API route 401 saying how to make the first key; a key made through the admin API works at once', async () => {
  const adminToken = 'admin-token-for-tests-0123456789';
  const t = await startTestGateway({ store: 'postgres', env: { HOST: '0.0.0.0', PUBLIC_URL: 'https://gw.example', ADMIN_TOKEN: adminToken } });
  try {
    assert.not.ok(t.gw.settings.open, 'off loopback the API is never open');
    assert.is((await t.call('GET', '/healthz')).status, 200);
    const ready = await t.call('GET', '/readyz');
    assert.is(ready.status, 200, 'keys are no condition of readiness: the first one is made through this gateway');
    assert.equal(await ready.json(), {
      status: 'ready',
      database: true,
      broker: true,
      api: 'locked: no API key exists yet; every API request is 401 until the first is created (README "API keys")',
    });
    for (const [method, route, key] of [
      ['POST', '/v1/generations', undefined],
      ['GET', '/v1/generations', undefined],
      ['GET', '/v1/events', undefined],
      ['POST', '/generate', undefined],
      ['GET', '/v1/generations', 'igk_not-a-key-of-this-gateway'],
    ] as const) {
      const res = await t.call(method, route, { ...(method === 'POST' ? { body: { prompt: 'x' } } : {}), ...(key ? { key } : {}) });
      assert.is(res.status, 401, `${method} ${route}`);
      assert.is(res.headers.get('content-type'), 'application/problem+json');
      const problem = (await res.json()) as { code: string; detail: string };
      assert.is(problem.code, 'no_api_key');
      assert.match(problem.detail, /No API key exists yet/);
      assert.match(problem.detail, /POST \/admin\/v1\/keys with "Authorization: Bearer \$ADMIN_TOKEN"/);
      assert.match(problem.detail, /npm run keys -- --url <this gateway> create --name NAME/);
    }
    assert.is(await t.countGenerations(), 0);

    // The documented first step after a deploy: the CLI against the gateway's admin API.
    const lines: string[] = [];
    assert.is(await runKeysCli(['--url', t.url, 'create', '--name', 'first'], (l) => lines.push(l), { ADMIN_TOKEN: adminToken }), 0);
    const key = lines[0]!;
    assert.match(key, /^igk_/);
    assert.is((await t.call('POST', '/v1/generations', { key, body: { prompt: 'a lantern' } })).status, 202);
    const after = (await (await t.call('GET', '/readyz')).json()) as { api: string };
    assert.match(after.api, /^keys:/);
    const anonymous = await t.call('GET', '/v1/generations');
    assert.is(anonymous.status, 401);
    assert.is(((await anonymous.json()) as { code: string }).code, 'unauthorized', 'no longer locked: the ordinary refusal');
  } finally {
    await t.stop();
  }
});

test('locked without an admin API (no ADMIN_TOKEN), the refusal names npm run keys on the database; a key another process makes ends it', async () => {
  const t = await startTestGateway({ store: 'postgres', env: { HOST: '0.0.0.0', PUBLIC_URL: 'https://gw.example', API_KEY_CACHE_MS: '0' } });
  try {
    const refused = await t.call('GET', '/v1/generations');
    assert.is(refused.status, 401);
    const problem = (await refused.json()) as { code: string; detail: string };
    assert.is(problem.code, 'no_api_key');
    assert.match(problem.detail, /npm run keys -- create --name NAME` where DATABASE_URL reaches its database/);
    assert.not.match(problem.detail, /admin\/v1/);
    assert.is((await t.call('POST', '/admin/v1/keys', { body: { name: 'x' } })).status, 404, 'no admin API without ADMIN_TOKEN');
    // As `npm run keys -- create` with DATABASE_URL would, from another process.
    const created = await createKey(t.gw.db, { name: 'first' }, 10);
    assert.is((await t.call('POST', '/v1/generations', { key: created.key, body: { prompt: 'x' } })).status, 202);
    const later = await t.call('GET', '/v1/generations');
    assert.is(((await later.json()) as { code: string }).code, 'unauthorized');
  } finally {
    await t.stop();
  }
});

test('a non-loopback address without a runner token refuses to start', async () => {
  for (const keys of [[], [{ name: 'k' }]]) {
    try {
      const t = await startTestGateway({ store: 'postgres', keys, env: { HOST: '0.0.0.0', RUNNER_TOKEN: '', PUBLIC_URL: 'https://gw.example' } });
      await t.stop();
      assert.unreachable('started without a runner token');
    } catch (err) {
      assert.instance(err, ConfigError);
      assert.match((err as Error).message, /RUNNER_TOKEN is required/);
    }
  }
});

test('off loopback /metrics needs the runner token (Cloud Run is reachable from the internet); on loopback it is open', async () => {
  const t = await startTestGateway({ store: 'postgres', keys: [{ name: 'k' }], env: { HOST: '0.0.0.0', PUBLIC_URL: 'https://gw.example' } });
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

test('off loopback without PUBLIC_URL or ALLOWED_HOSTS the gateway refuses to start: its links would copy the Host header', async () => {
  try {
    await startTestGateway({ store: 'postgres', keys: [{ name: 'k' }], env: { HOST: '0.0.0.0' } });
    assert.unreachable('started without PUBLIC_URL');
  } catch (err) {
    assert.instance(err, ConfigError);
    assert.match((err as Error).message, /PUBLIC_URL is required when listening on 0\.0\.0\.0.*ALLOWED_HOSTS/);
  }
});

/** Submits with a Host header of our choosing (fetch does not let one set it). */
async function submitAs(t: TestGateway, host: string, key?: string) {
  const body = JSON.stringify({ prompt: 'a lantern' });
  const conn = await rawConnection(t.url);
  conn.write(
    `POST /v1/generations HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n` +
      `${key ? `Authorization: Bearer ${key}\r\n` : ''}Connection: close\r\n\r\n${body}`,
  );
  return parseResponse(await conn.closed);
}

test('without PUBLIC_URL only the allowed host names are served, and links use them', async () => {
  const port = (t: TestGateway) => new URL(t.url).port;
  const local = await startTestGateway({ store: 'postgres' });
  try {
    for (const host of ['evil.example', `evil.example:${port(local)}`, 'localhost.evil.example']) {
      const res = await submitAs(local, host);
      assert.is(res.status, 421, host);
      assert.is(JSON.parse(res.body).code, 'misdirected_request');
    }
    for (const host of [`localhost:${port(local)}`, `127.0.0.1:${port(local)}`, `[::1]:${port(local)}`]) {
      const res = await submitAs(local, host);
      assert.is(res.status, 202, host);
      assert.is(res.headers.location, `http://${host}/v1/generations/${JSON.parse(res.body).id}`);
    }
    assert.is(await local.countGenerations(), 3, 'the refused ones changed nothing');
  } finally {
    await local.stop();
  }
  const listed = await startTestGateway({ store: 'postgres', keys: [{ name: 'k' }], env: { HOST: '0.0.0.0', ALLOWED_HOSTS: 'Items.Example, gw.example' } });
  try {
    assert.is((await submitAs(listed, 'evil.example', listed.keys.k)).status, 421);
    assert.is((await submitAs(listed, `localhost:${port(listed)}`, listed.keys.k)).status, 202, 'loopback names lead back to the asker only');
    const res = await submitAs(listed, 'items.example', listed.keys.k);
    assert.is(res.status, 202);
    assert.match(res.headers.location ?? '', /^http:\/\/items\.example\/v1\/generations\//);
  } finally {
    await listed.stop();
  }
  const fixed = await startTestGateway({ store: 'postgres', env: { PUBLIC_URL: 'https://items.example/' } });
  try {
    const res = await submitAs(fixed, 'anything.example');
    assert.is(res.status, 202, 'with PUBLIC_URL the Host header does not matter');
    assert.match(res.headers.location ?? '', /^https:\/\/items\.example\/v1\/generations\//);
  } finally {
    await fixed.stop();
  }
});

test.run();
