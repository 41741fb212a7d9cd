// The target policy of a gateway off loopback, through its API: private and metadata targets
// refused at submit (422 naming `webhook`), and a name that resolves to a public address at submit
// but to loopback at delivery (DNS rebinding) refused at connect time, for good.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { submit } from '../helpers/submit.ts';
import type { ResolvedAddress } from '../../src/webhooks/index.ts';
import { eventually } from './receiver.ts';

const it = suite<{ t: TestGateway; alice: string; lookups: string[] }>('webhook targets off loopback');

/** Answers per host name; `rebind.example.test` is public the first time it is asked, loopback after. */
const answers = (lookups: string[]) => async (host: string): Promise<ResolvedAddress[]> => {
  lookups.push(host);
  if (host === 'hooks.example.test') return [{ address: '93.184.216.34', family: 4 }];
  if (host === 'internal.example.test') return [{ address: '10.20.30.40', family: 4 }];
  if (host === 'allowed.example.test') return [{ address: '10.99.0.7', family: 4 }];
  if (host === 'rebind.example.test') {
    const first = lookups.filter((h) => h === host).length === 1;
    return [{ address: first ? '93.184.216.34' : '127.0.0.1', family: 4 }];
  }
  throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
};

it.before(async (ctx) => {
  ctx.lookups = [];
  ctx.t = await startTestGateway({
    store: 'postgres',
    keys: [{ name: 'alice' }],
    env: { WEBHOOK_ALLOW_PRIVATE: '10.99.0.0/16', WEBHOOK_RETRY_BASE_MS: '5' },
    webhooks: { allowLoopback: false, resolve: answers(ctx.lookups) },
  });
  ctx.alice = ctx.t.keys.alice!;
});
it.after(({ t }) => t.stop());

it('private, loopback, metadata and plain-http targets are refused at submit, naming the field', async ({ t, alice }) => {
  const cases: [string, RegExp][] = [
    ['https://127.0.0.1/hook', /loopback/],
    ['https://[::1]/hook', /loopback/],
    ['https://10.0.0.1/hook', /private/],
    ['https://172.16.4.4/hook', /private/],
    ['https://192.168.0.10/hook', /private/],
    ['https://169.254.169.254/latest/meta-data', /linkLocal/],
    ['https://[fd00::1]/hook', /uniqueLocal/],
    ['https://[::ffff:10.0.0.1]/hook', /private/],
    ['https://100.64.1.1/hook', /carrierGradeNat/],
    ['https://0.0.0.0/hook', /unspecified/],
    ['https://metadata.google.internal/computeMetadata/v1/', /metadata/],
    ['https://internal.example.test/hook', /internal\.example\.test resolves to 10\.20\.30\.40/],
    ['https://nowhere.example.test/hook', /does not resolve/],
    ['http://hooks.example.test/hook', /https/],
  ];
  const before = await t.countGenerations();
  for (const [webhook, why] of cases) {
    const res = await t.call('POST', '/v1/generations', { key: alice, body: { prompt: 'a sword', webhook } });
    assert.is(res.status, 422, webhook);
    assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
    const body = (await res.json()) as any;
    assert.is(body.code, 'webhook_refused', webhook);
    assert.is(body.errors[0].path, 'webhook');
    assert.match(body.detail, why, webhook);
  }
  assert.is(await t.countGenerations(), before, 'nothing was stored');
  const tooLong = await t.call('POST', '/v1/generations', { key: alice, body: { prompt: 'a sword', webhook: `https://hooks.example.test/${'a'.repeat(2048)}` } });
  assert.is(tooLong.status, 422);
  // Public, and private but allow-listed, are accepted.
  await submit(t, { prompt: 'a sword', webhook: 'https://hooks.example.test/hook' }, alice);
  await submit(t, { prompt: 'a sword', webhook: 'https://allowed.example.test/hook' }, alice);
});

it('a name rebound to loopback after submit is refused at connect time and not retried', async ({ t, alice, lookups }) => {
  const id = await submit(t, { prompt: 'a bow', num_inference_steps: 4, webhook: 'https://rebind.example.test/hook' }, alice);
  assert.is((await t.runner(`/generations/${id}/claim`, { runner_id: 'r1' })).status, 200);
  assert.is((await t.runner(`/generations/${id}/complete`, { attempt: 1, images: [{ key: `generated/${id}/0.png` }] })).status, 200);
  const read = async () => ((await (await t.call('GET', `/v1/generations/${id}/webhook-deliveries`, { key: alice })).json()) as any).data as any[];
  const [d] = await eventually(read, (x) => x.length > 0);
  assert.is(d.status_code, null);
  assert.is(d.will_retry, false);
  assert.match(d.error, /refused at connect: rebind\.example\.test resolves to 127\.0\.0\.1 is a loopback address/);
  assert.is(lookups.filter((h) => h === 'rebind.example.test').length, 2, 'looked up at submit and at connect');
  const left = await t.gw.db.query('SELECT 1 FROM webhook_outbox WHERE generation_id = $1', [id]);
  assert.is(left.length, 0);
});

it.run();
