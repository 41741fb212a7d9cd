// The webhook target policy (SSRF) as a table: which addresses and URLs a gateway off loopback
// refuses, what the allow-list lets through, what a gateway on loopback may call, and the retry
// schedule's bounds.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { addressRefusal, checkTarget, parseAllowList, retryAfterMs, retryDelayMs, urlRefusal, CAP_FACTOR, TargetRefused } from '../../src/webhooks/index.ts';

const it = suite('webhook target policy');

const production = { allowLoopback: false, allowPrivate: [] };
const embedded = { allowLoopback: true, allowPrivate: [] };

it('refuses every address that is not public unicast, off loopback', () => {
  const refused: [string, RegExp][] = [
    ['127.0.0.1', /loopback/],
    ['127.10.0.3', /loopback/],
    ['::1', /loopback/],
    ['10.1.2.3', /private/],
    ['172.16.0.1', /private/],
    ['172.31.255.254', /private/],
    ['192.168.1.1', /private/],
    ['169.254.169.254', /linkLocal/],
    ['fe80::1', /linkLocal/],
    ['fd00::1', /uniqueLocal/],
    ['::ffff:10.0.0.1', /10\.0\.0\.1 is a private/],
    ['::ffff:127.0.0.1', /loopback/],
    ['100.64.0.1', /carrierGradeNat/],
    ['0.0.0.0', /unspecified/],
    ['::', /unspecified/],
    ['224.0.0.1', /multicast/],
    ['255.255.255.255', /broadcast/],
    ['240.0.0.1', /reserved/],
  ];
  for (const [address, why] of refused) {
    const refusal = addressRefusal(address, production);
    assert.ok(refusal, `${address} refused`);
    assert.match(refusal!, why, address);
  }
  for (const address of ['93.184.216.34', '8.8.8.8', '2606:4700:4700::1111', '172.32.0.1']) {
    assert.is(addressRefusal(address, production), null, `${address} allowed`);
  }
});

it('the allow-list lets named private ranges through, and only them', () => {
  const policy = { allowLoopback: false, allowPrivate: parseAllowList('10.1.0.0/16, fd00::/8,192.168.5.5') };
  assert.is(addressRefusal('10.1.200.3', policy), null);
  assert.is(addressRefusal('::ffff:10.1.0.9', policy), null);
  assert.is(addressRefusal('fd12::3', policy), null);
  assert.is(addressRefusal('192.168.5.5', policy), null);
  assert.match(addressRefusal('10.2.0.1', policy)!, /private/);
  assert.match(addressRefusal('192.168.5.6', policy)!, /private/);
  assert.match(addressRefusal('127.0.0.1', policy)!, /loopback/);
  assert.throws(() => parseAllowList('10.0.0.0/99'));
  assert.throws(() => parseAllowList('not-a-range'));
});

it('URLs: https only off loopback, no credentials, no metadata names, no private literals', () => {
  assert.match(urlRefusal('http://hooks.example.com/x', production)!, /must be an https URL/);
  assert.match(urlRefusal('ftp://hooks.example.com/x', production)!, /https/);
  assert.match(urlRefusal('https://user:pw@hooks.example.com/x', production)!, /credentials/);
  assert.match(urlRefusal('https://metadata.google.internal/computeMetadata/v1/', production)!, /metadata/);
  assert.match(urlRefusal('https://METADATA.google.internal./', production)!, /metadata/);
  assert.match(urlRefusal('https://169.254.169.254/latest/meta-data/', production)!, /linkLocal/);
  assert.match(urlRefusal('https://[::ffff:10.0.0.1]/x', production)!, /private/);
  assert.match(urlRefusal('https://[::1]:8443/x', production)!, /loopback/);
  assert.match(urlRefusal('https://0x7f000001/x', production)!, /loopback/, 'the URL parser normalizes hex hosts');
  assert.is(urlRefusal('https://hooks.example.com/x', production), null);
  assert.is(urlRefusal('https://93.184.216.34/x', production), null);
  // Embedded on loopback: http and loopback allowed, private still not.
  assert.is(urlRefusal('http://127.0.0.1:9000/hook', embedded), null);
  assert.is(urlRefusal('http://[::1]:9000/hook', embedded), null);
  assert.match(urlRefusal('http://10.0.0.1/hook', embedded)!, /private/);
  assert.match(urlRefusal('http://169.254.169.254/', embedded)!, /linkLocal/);
});

it('names: refused when any address they resolve to is refused, or when they do not resolve', async () => {
  const resolve = async (host: string) => {
    if (host === 'public.example.test') return [{ address: '93.184.216.34', family: 4 as const }];
    if (host === 'mixed.example.test') return [{ address: '93.184.216.34', family: 4 as const }, { address: '10.0.0.5', family: 4 as const }];
    if (host === 'v6.example.test') return [{ address: 'fd00::7', family: 6 as const }];
    throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
  };
  await checkTarget('https://public.example.test/hook', { ...production, resolve });
  for (const [url, why] of [
    ['https://mixed.example.test/hook', /mixed\.example\.test resolves to 10\.0\.0\.5 is a private address/],
    ['https://v6.example.test/hook', /uniqueLocal/],
    ['https://nowhere.example.test/hook', /does not resolve \(ENOTFOUND\)/],
    ['http://public.example.test/hook', /https/],
  ] as const) {
    try {
      await checkTarget(url, { ...production, resolve });
      assert.unreachable(url);
    } catch (err) {
      assert.instance(err, TargetRefused, url);
      assert.match((err as Error).message, why);
    }
  }
});

it('retry waits: full jitter under a doubling ceiling, capped; Retry-After within the cap', () => {
  const base = 5000;
  assert.is(retryDelayMs(1, base, () => 0.999999), 4999);
  assert.is(retryDelayMs(2, base, () => 0.999999), 9999);
  assert.is(retryDelayMs(3, base, () => 0.5), 10_000);
  assert.is(retryDelayMs(30, base, () => 0.999999), Math.floor(base * CAP_FACTOR * 0.999999), 'capped at 4 h');
  assert.is(retryDelayMs(5, base, () => 0), 0);
  assert.is(retryAfterMs('7', base, 0), 7000);
  assert.is(retryAfterMs('999999999', base, 0), base * CAP_FACTOR);
  assert.is(retryAfterMs(new Date(60_000).toUTCString(), base, 0), 60_000);
  assert.is(retryAfterMs('soon', base, 0), null);
  assert.is(retryAfterMs(undefined, base, 0), null);
});

it.run();
