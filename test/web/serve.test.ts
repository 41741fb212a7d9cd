// How the gateway serves the web app: the bundle (built once, hashed names), compression by
// Accept-Encoding, revalidation by ETag, the Content-Security-Policy with a bucket's origin, and
// nothing else under /assets.
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { contentSecurityPolicy, webRoutes } from '../../src/gateway/routes/web.ts';
import { webBundle } from '../../src/web/index.ts';

const it = suite('serving the web app');

it('one bundle per process: a script and a stylesheet named by their content, the page linking both', async () => {
  const [a, b] = await Promise.all([webBundle(), webBundle()]);
  assert.is(a, b, 'built once');
  const names = [...a.assets.keys()];
  assert.is(names.length, 2);
  assert.ok(names.some((n) => /^main-[A-Z0-9]{8}\.css$/.test(n)), names.join());
  assert.ok(names.some((n) => /^main-[A-Z0-9]{8}\.js$/.test(n)), names.join());
  const html = a.html.identity.toString();
  for (const n of names) assert.ok(html.includes(`/assets/${n}`), n);
  assert.not.match(html, /<script>|<style|style=/, 'nothing inline');
});

it('compressed as asked (brotli, gzip, none), the same bytes each way; 304 for a known ETag', async () => {
  const app = webRoutes(() => []);
  const { assets } = await webBundle();
  const js = [...assets.values()].find((x) => x.name.endsWith('.js'))!;
  const path = `/assets/${js.name}`;
  const br = await app.request(path, { headers: { 'Accept-Encoding': 'gzip, deflate, br' } });
  assert.is(br.headers.get('content-encoding'), 'br');
  assert.is(br.headers.get('vary'), 'Accept-Encoding');
  assert.ok(brotliDecompressSync(Buffer.from(await br.arrayBuffer())).equals(js.identity));
  const gz = await app.request(path, { headers: { 'Accept-Encoding': 'gzip' } });
  assert.is(gz.headers.get('content-encoding'), 'gzip');
  assert.ok(gunzipSync(Buffer.from(await gz.arrayBuffer())).equals(js.identity));
  const plain = await app.request(path);
  assert.is(plain.headers.get('content-encoding'), null);
  assert.ok(Buffer.from(await plain.arrayBuffer()).equals(js.identity));
  assert.is(plain.headers.get('content-type'), 'text/javascript; charset=utf-8');
  assert.ok(br.headers.get('etag'));
  const again = await app.request(path, { headers: { 'If-None-Match': br.headers.get('etag')! } });
  assert.is(again.status, 304);
  assert.is(await again.text(), '');
});

it('the page: revalidated each load, with the CSP naming a bucket when images come from one', async () => {
  const page = await webRoutes(() => ['https://storage.googleapis.com']).request('/');
  assert.is(page.headers.get('cache-control'), 'no-cache');
  assert.is(page.headers.get('x-content-type-options'), 'nosniff');
  const csp = page.headers.get('content-security-policy')!;
  assert.is(csp, contentSecurityPolicy(['https://storage.googleapis.com']));
  assert.match(csp, /img-src 'self' data: blob: https:\/\/storage\.googleapis\.com;/);
  assert.match(csp, /connect-src 'self' https:\/\/storage\.googleapis\.com;/);
  assert.match(contentSecurityPolicy([]), /connect-src 'self';/);
  assert.match(csp, /frame-ancestors 'none'/);
});

it('only the bundle is under /assets', async () => {
  const app = webRoutes(() => []);
  for (const p of ['/assets/nothing.js', '/assets/..%2Fpackage.json', '/assets/constructor', '/assets/']) {
    assert.is((await app.request(p)).status, 404, p);
  }
});

it.run();
