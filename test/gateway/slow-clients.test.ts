// Clients that are slow or vanish: an unknown client is refused before its body is read, a body
// that trickles gets 408, slow headers are cut off, and a client that leaves mid-body is not an
// error of ours. Real gateway, real sockets.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { recordingLogger } from '../helpers/log.ts';
import { parseResponse, rawConnection } from '../helpers/raw-http.ts';

const log = recordingLogger();
const it = suite<{ t: TestGateway; key: string }>('slow and vanishing clients');
it.before(async (ctx) => {
  ctx.t = await startTestGateway({
    store: 'postgres',
    keys: [{ name: 'k' }],
    log,
    env: { HEADERS_TIMEOUT_MS: '300', BODY_TIMEOUT_MS: '300' },
  });
  ctx.key = ctx.t.keys.k!;
});
it.after(({ t }) => t.stop());

const head = (t: TestGateway, extra: string) =>
  `POST /v1/generations HTTP/1.1\r\nHost: ${new URL(t.url).host}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n${extra}\r\n`;

it('no key: 401 at once, without waiting for the body, and the connection is closed', async ({ t }) => {
  const conn = await rawConnection(t.url);
  conn.write(head(t, ''));
  conn.write('{"prompt": "a');
  // The body is never finished: only an answer that does not wait for it ends this.
  const res = parseResponse(await conn.closed);
  assert.is(res.status, 401);
  assert.is(res.headers['content-type'], 'application/problem+json');
  assert.is(JSON.parse(res.body).code, 'unauthorized');
});

it('a known client trickling its body: 408 problem after BODY_TIMEOUT_MS, connection closed, nothing stored', async ({ t, key }) => {
  const before = await t.countGenerations();
  const conn = await rawConnection(t.url);
  conn.write(head(t, `Authorization: Bearer ${key}\r\n`));
  conn.write('{"prompt": "a');
  const res = parseResponse(await conn.closed);
  assert.is(res.status, 408);
  assert.is(res.headers['content-type'], 'application/problem+json');
  assert.is(JSON.parse(res.body).code, 'request_timeout');
  assert.is(await t.countGenerations(), before);
});

it('headers that never finish: the server answers 408 and closes (HEADERS_TIMEOUT_MS)', async ({ t }) => {
  const conn = await rawConnection(t.url);
  conn.write(`GET /healthz HTTP/1.1\r\nHost: ${new URL(t.url).host}\r\nX-Slow: `);
  const res = parseResponse(await conn.closed);
  assert.is(res.status, 408);
  assert.is(res.headers['content-type'], 'application/problem+json');
  assert.is(JSON.parse(res.body).code, 'request_timeout');
});

it('what Node refuses before the app sees it is a problem too: bad HTTP, huge headers, no Host', async ({ t }) => {
  const host = new URL(t.url).host;
  const cases: [string, number, string][] = [
    ['GET /healthz HTTP/1.1\r\nHost: x\r\nBad\x01Header: 1\r\n\r\n', 400, 'malformed_request'],
    [`GET /${'a'.repeat(20_000)} HTTP/1.1\r\nHost: ${host}\r\n\r\n`, 431, 'headers_too_large'],
    ['GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n', 400, 'malformed_request'],
  ];
  for (const [request, status, code] of cases) {
    const conn = await rawConnection(t.url);
    conn.write(request);
    const res = parseResponse(await conn.closed);
    assert.is(res.status, status, request.slice(0, 40));
    assert.is(res.headers['content-type'], 'application/problem+json');
    const body = JSON.parse(res.body);
    assert.equal([body.code, body.status], [code, status]);
  }
});

it('a client that disconnects mid-body is logged at debug, not as an error (and not as the database)', async ({ t, key }) => {
  log.entries.length = 0;
  const seen = log.waitFor((e) => e.msg === 'client closed the request');
  const conn = await rawConnection(t.url);
  conn.write(head(t, `Authorization: Bearer ${key}\r\n`));
  conn.write('{"prompt": "a');
  // Whether the gateway is already reading the body or still authenticating, the end is the same.
  conn.destroy();
  const entry = await seen;
  assert.is(entry.level, 'debug');
  assert.equal(log.at('error'), []);
  assert.equal(log.at('warn'), []);
});

it.run();
