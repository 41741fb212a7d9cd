// Nobody hogs: the compute budget (a cost per generation, capped per request and per key's
// unfinished work) and the rate limits (token buckets per key and per client address, shared by
// every gateway instance), with their answers and headers.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createKey } from '../../src/gateway/keys.ts';
import { startGateway } from '../../src/gateway/service.ts';
import { RUNNER_TOKEN, startTestGateway } from '../helpers/gateway.ts';

const body = (extra: Record<string, unknown> = {}) => ({ prompt: 'a sword', ...extra });

async function problemOf(res: Response, status: number, code: string) {
  assert.is(res.status, status, `${code}: ${await res.clone().text()}`);
  assert.is(res.headers.get('content-type'), 'application/problem+json');
  const p = (await res.json()) as Record<string, any>;
  assert.is(p.code, code);
  return p;
}

test('cost: shown on the generation; one over MAX_GENERATION_COST is 422 with the numbers', async () => {
  const t = await startTestGateway({ store: 'postgres' });
  try {
    const g = (await (await t.call('POST', '/v1/generations', { body: body() })).json()) as any;
    assert.is(g.cost, 400, '512², 50 steps, guided: 4 × 50 × 2');
    const plain = (await (await t.call('POST', '/v1/generations', { body: body({ width: 256, height: 256, num_inference_steps: 1, guidance_scale: 1 }) })).json()) as any;
    assert.is(plain.cost, 1, 'the smallest job is the unit');
    const before = await t.countGenerations();
    const p = await problemOf(
      await t.call('POST', '/v1/generations', { body: body({ width: 1024, height: 1024, num_inference_steps: 150, num_images: 4 }) }),
      422,
      'generation_too_costly',
    );
    assert.equal([p.cost, p.limit], [19_200, 6_400]);
    assert.match(p.detail, /costs 19200 units .* over 6400, the most one generation may cost/);
    assert.is(await t.countGenerations(), before);
  } finally {
    await t.stop();
  }
});

test("a key's compute budget caps the cost of its unfinished generations: 429 with the numbers, free again when one finishes", async () => {
  const t = await startTestGateway({ store: 'postgres' });
  try {
    const k = await createKey(t.gw.db, { name: 'budget', max_unfinished_cost: 1000 }, 100);
    const submit = (extra: Record<string, unknown> = {}) => t.call('POST', '/v1/generations', { key: k.key, body: body(extra) });
    const first = ((await (await submit()).json()) as any).id;
    assert.is((await submit()).status, 202);
    const p = await problemOf(await submit(), 429, 'compute_budget_exceeded');
    assert.equal([p.limit, p.unfinished_cost, p.cost], [1000, 800, 400]);
    assert.ok(Number((await submit()).headers.get('retry-after')) > 0);
    assert.is((await submit({ num_inference_steps: 25 })).status, 202, 'a cheaper one (200) still fits');
    await problemOf(await submit({ num_inference_steps: 150 }), 422, 'generation_too_costly');

    const metrics = await (await t.call('GET', '/metrics')).text();
    assert.match(metrics, new RegExp(`itemgen_key_unfinished_cost\\{key_id="${k.id}",key_name="budget"\\} 1000`));
    assert.match(metrics, new RegExp(`itemgen_key_unfinished_generations\\{key_id="${k.id}",key_name="budget"\\} 3`));
    assert.match(metrics, new RegExp(`itemgen_generation_cost_submitted_total\\{key_id="${k.id}"\\} 1000`));

    assert.is((await t.call('POST', `/v1/generations/${first}/cancel`, { key: k.key })).status, 200);
    assert.is((await submit()).status, 202, 'the canceled one no longer counts');
  } finally {
    await t.stop();
  }
});

test('the unfinished cap is exact under 64 concurrent submits of one key, split over two gateway instances', async () => {
  const t = await startTestGateway({ store: 'postgres' });
  const other = await startGateway(t.config, { schema: t.schema! });
  try {
    const k = await createKey(t.gw.db, { name: 'burst', max_unfinished: 10 }, 100);
    const answers = await Promise.all(
      Array.from({ length: 64 }, (_, i) =>
        fetch(`${i % 2 ? other.url : t.url}/v1/generations`, {
          method: 'POST',
          headers: { authorization: `Bearer ${k.key}`, 'content-type': 'application/json' },
          body: JSON.stringify(body()),
        }),
      ),
    );
    const statuses = answers.map((r) => r.status).sort();
    assert.equal(statuses, [...Array(10).fill(202), ...Array(54).fill(429)]);
    const refused = answers.find((r) => r.status === 429)!;
    await problemOf(refused, 429, 'too_many_unfinished');
    assert.is(await t.countGenerations(), 10);
  } finally {
    await other.close();
    await t.stop();
  }
});

test('rate limits per key: submits and other requests from buckets of their own, with RateLimit fields; shared by two instances', async () => {
  const t = await startTestGateway({ store: 'postgres', keys: [{ name: 'a' }, { name: 'b' }], env: { RATE_LIMIT_SUBMIT: '3/60', RATE_LIMIT_REQUEST: '5/60' } });
  const other = await startGateway(t.config, { schema: t.schema! });
  const [a, b] = [t.keys.a!, t.keys.b!];
  try {
    const seen: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await t.call('POST', '/v1/generations', { key: a, body: body() });
      assert.is(res.status, 202);
      assert.is(res.headers.get('ratelimit-policy'), '"submit";q=3;w=60');
      seen.push(res.headers.get('ratelimit')!);
    }
    assert.equal(seen.map((h) => /r=(\d+)/.exec(h)![1]), ['2', '1', '0']);
    const refused = await fetch(`${other.url}/v1/generations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${a}`, 'content-type': 'application/json' },
      body: JSON.stringify(body()),
    });
    const p = await problemOf(refused, 429, 'rate_limited');
    assert.equal([p.limit, p.window_seconds], [3, 60]);
    assert.is(refused.headers.get('retry-after'), '20', 'one token comes back every 60/3 s');
    assert.match(refused.headers.get('ratelimit') ?? '', /^"submit";r=0;t=\d+$/);
    assert.is((await t.call('POST', '/v1/generations', { key: b, body: body() })).status, 202, 'another key has its own bucket');
    assert.is((await t.call('GET', '/v1/generations', { key: a })).status, 200, 'reads spend from another bucket');
    assert.is((await t.call('GET', '/v1/generations', { key: a })).headers.get('ratelimit-policy'), '"request";q=5;w=60');
    for (let i = 0; i < 3; i++) await t.call('GET', '/v1/generations', { key: a });
    await problemOf(await t.call('GET', '/v1/generations', { key: a }), 429, 'rate_limited');
    assert.is((await t.runner('/generations/00000000-0000-4000-8000-000000000000/claim', { runner_id: 'r' })).status, 404, 'runners are not limited');
  } finally {
    await other.close();
    await t.stop();
  }
});

test('requests without a valid key are limited per client address (X-Forwarded-For only behind trusted proxies)', async () => {
  const t = await startTestGateway({ store: 'postgres', keys: [{ name: 'k' }], env: { RATE_LIMIT_ADDRESS: '2/60' } });
  try {
    const bad = (headers: Record<string, string> = {}) => t.call('GET', '/v1/generations', { key: 'igk_not-a-key', headers });
    assert.is((await bad()).status, 401);
    assert.is((await t.call('GET', '/v1/generations')).status, 401, 'no key at all counts too');
    const p = await problemOf(await bad({ 'x-forwarded-for': '203.0.113.9' }), 429, 'rate_limited');
    assert.is(p.limit, 2);
    assert.is((await t.call('GET', '/v1/generations', { key: t.keys.k })).status, 200, 'a valid key is not held back by its address');
  } finally {
    await t.stop();
  }
  const proxied = await startTestGateway({ store: 'postgres', keys: [{ name: 'k' }], env: { RATE_LIMIT_ADDRESS: '1/60', TRUSTED_PROXY_HOPS: '1' } });
  try {
    const from = (address: string) => proxied.call('GET', '/v1/generations', { headers: { 'x-forwarded-for': `198.51.100.1, ${address}` } });
    assert.equal([(await from('203.0.113.1')).status, (await from('203.0.113.1')).status], [401, 429]);
    assert.is((await from('203.0.113.2')).status, 401, 'another client behind the proxy has its own bucket');
    assert.is((await from('2001:db8:1:2::5')).status, 401);
    assert.is((await from('2001:db8:1:2:ffff::9')).status, 429, 'IPv6 clients are counted per /64');
  } finally {
    await proxied.stop();
  }
});

test.run();
