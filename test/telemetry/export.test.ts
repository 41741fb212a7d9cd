// The SDK as the OTEL_* variables configure it (src/telemetry/): OTLP over HTTP with protobuf, the
// configured headers, the service name, ratio sampling, W3C propagation, and the process's one SDK
// shared by the gateway and the runner of the embedded product.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseConfig } from '../../src/gateway/config.ts';
import { ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { contextFrom, currentTraceparent, SpanKind, startSpan, startTelemetry, withActive, withSpan } from '../../src/telemetry/index.ts';

/** Records each OTLP export request's headers and body. */
async function startCollector() {
  const exports: { headers: http.IncomingHttpHeaders; body: Buffer }[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      exports.push({ headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, exports, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

test('OTLP/HTTP protobuf with the configured headers and service name; one SDK for the whole process', async () => {
  const collector = await startCollector();
  try {
    const config = parseConfig({
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${collector.url}/custom/traces`,
      OTEL_EXPORTER_OTLP_HEADERS: 'x-tenant=tsuki',
      OTEL_SERVICE_NAME: 'itemgen-export-test',
    }).telemetry;
    assert.is(config.otlp.protocol, 'http/protobuf', 'the default protocol');
    const stopGateway = await startTelemetry(config, 'itemgen-gateway');
    // The embedded runner starts it too: it shares the gateway's.
    const stopRunner = await startTelemetry(config, 'itemgen-runner');
    const traceparent = await withSpan('submit-like', {}, () => currentTraceparent());
    assert.match(String(traceparent), /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    await stopRunner();
    assert.is(collector.exports.length, 0, 'still running for the gateway: nothing flushed yet');
    // Work that continues from a stored traceparent is in the same trace.
    await withSpan('later', {}, () => {}, { parent: contextFrom(traceparent) });
    await stopGateway();

    assert.ok(collector.exports.length >= 1);
    const [first] = collector.exports;
    assert.is(first!.headers['content-type'], 'application/x-protobuf');
    assert.is(first!.headers['x-tenant'], 'tsuki');
    const body = Buffer.concat(collector.exports.map((e) => e.body));
    for (const text of ['submit-like', 'later', 'itemgen-export-test']) assert.ok(body.includes(text), `${text} exported`);
    assert.ok(body.includes(Buffer.from(traceparent!.slice(3, 35), 'hex')), 'the continued span carries the stored trace id');
  } finally {
    await collector.close();
  }
  assert.is(currentTraceparent(), null, 'stopped: the API is a no-op again');
});

test('ratio sampling: 0 records nothing, and a parent decides for its children', async () => {
  const collector = await startCollector();
  try {
    const stop = await startTelemetry(
      parseConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0' }).telemetry,
      'itemgen',
    );
    const root = await withSpan('unsampled', {}, (span) => ({ recording: span.isRecording(), traceparent: currentTraceparent() }));
    assert.is(root.recording, false);
    assert.match(String(root.traceparent), /-00$/, 'propagated as not sampled');
    const sampledParent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const child = await withSpan('child', {}, (span) => span.isRecording(), { parent: contextFrom(sampledParent) });
    assert.is(child, true, "a sampled parent's child is recorded whatever the ratio");
    await stop();
    assert.ok(Buffer.concat(collector.exports.map((e) => e.body)).includes('child'));
    assert.not.ok(Buffer.concat(collector.exports.map((e) => e.body)).includes('unsampled'));
  } finally {
    await collector.close();
  }
});

test('an export that fails is said through the warn callback, and drops spans, never work', async () => {
  const collector = await startCollector();
  await collector.close(); // nothing listens there any more
  let warned: (message: string) => void = () => {};
  const heard = new Promise<string>((resolve) => (warned = resolve));
  const stop = await startTelemetry(parseConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: collector.url }).telemetry, 'itemgen', (m) => warned(m));
  // A full batch is exported at once, without waiting for the schedule.
  for (let i = 0; i < 512; i++) assert.is(await withSpan('work', {}, () => i), i);
  assert.match(await heard, /^connect ECONNREFUSED 127\.0\.0\.1:\d+$/, 'the error\'s message, not its serialized stack');
  await stop().catch(() => {});
  assert.is(currentTraceparent(), null, 'unregistered even though the last export failed');
});


test("a parent-based sampler's sampled-out trace costs no new span: children are the parent's own, in its trace; other samplers still decide", async () => {
  const collector = await startCollector();
  const unsampledRemote = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00';
  try {
    let stop = await startTelemetry(
      parseConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0' }).telemetry,
      'itemgen',
    );
    const seen = await withSpan('sampled-out root', {}, (root) => {
      const child = startSpan('child', { 'itemgen.x': 1 });
      return { root, child, inner: withActive(child, () => currentTraceparent()), outer: currentTraceparent() };
    });
    assert.is(seen.child, seen.root, "the root's own span, not one the SDK made");
    assert.is(seen.inner, seen.outer, 'the same trace context inside the child');
    assert.match(String(seen.outer), /-00$/);

    const parent = contextFrom(unsampledRemote);
    const consumer = startSpan('consume', {}, { kind: SpanKind.CONSUMER, parent });
    assert.is(consumer, trace.getSpan(parent), "a remote unsampled parent's span");
    assert.is(consumer.spanContext().traceId, '0af7651916cd43dd8448eb211c80319c');
    assert.is(withActive(consumer, () => currentTraceparent(), parent), unsampledRemote, 'propagated on as it came');
    await stop();

    // always_on is not parent-based: it samples a child whatever its parent said.
    stop = await startTelemetry(parseConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, OTEL_TRACES_SAMPLER: 'always_on' }).telemetry, 'itemgen');
    const decided = startSpan('decided by the sampler', {}, { parent: contextFrom(unsampledRemote) });
    assert.is(decided.isRecording(), true);
    assert.is(decided.spanContext().traceId, '0af7651916cd43dd8448eb211c80319c');
    decided.end();
    await stop();
    const body = Buffer.concat(collector.exports.map((e) => e.body));
    assert.ok(body.includes('decided by the sampler'));
    for (const name of ['sampled-out root', 'child', 'consume']) assert.not.ok(body.includes(name), `${name} not exported`);
  } finally {
    await collector.close();
  }
});

test('contextFrom: no traceparent is the empty context, whatever else the headers hold', () => {
  assert.is(contextFrom({ tracestate: 'k=v', 'content-type': 'application/json' }), ROOT_CONTEXT);
  assert.is(contextFrom({ traceparent: undefined }), ROOT_CONTEXT);
  assert.is(contextFrom(null), ROOT_CONTEXT);
});
test.run();
