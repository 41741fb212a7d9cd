// Log lines in Cloud Logging's structured form (issue 14, criterion 2): the fields it reads, the
// trace and span ids only within a span, no secrets, no prompts unless LOG_PROMPTS says so; and
// with no OTEL_* set, no SDK loaded and nothing recorded.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { context, propagation, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createLogger, type LogFormat } from '../../src/core/log.ts';
import { parseConfig } from '../../src/gateway/config.ts';
import { withSpan } from '../../src/telemetry/index.ts';
import { startTestGateway } from '../helpers/gateway.ts';
import { recordingLogger } from '../helpers/log.ts';

/** The JSON lines `fn` writes to stderr through a logger of `format`. */
async function linesOf(format: LogFormat, fn: (log: ReturnType<typeof createLogger>) => Promise<void> | void): Promise<Record<string, unknown>[]> {
  const lines: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = ((chunk: string) => (lines.push(chunk), true)) as typeof process.stderr.write;
  try {
    await fn(createLogger('debug', 'test', format));
  } finally {
    process.stderr.write = write;
  }
  return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
}

test('a line has severity, message and time; within a span, its trace and span ids', async () => {
  const exporter = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  provider.register();
  try {
    let ids = { traceId: '', spanId: '' };
    const [outside, inside, warning] = await linesOf({ project: 'tsuki-prod' }, async (log) => {
      log.info('before any span', { n: 1 });
      await withSpan('work', {}, (span) => {
        ids = span.spanContext();
        log.info('within a span');
        log.warn('careful');
      });
    });
    assert.equal(Object.keys(outside!).sort(), ['component', 'message', 'n', 'severity', 'time']);
    assert.is(outside!.severity, 'INFO');
    assert.is(outside!.message, 'before any span');
    assert.ok(!Number.isNaN(Date.parse(String(outside!.time))));
    assert.is(inside!['logging.googleapis.com/trace'], `projects/tsuki-prod/traces/${ids.traceId}`);
    assert.is(inside!['logging.googleapis.com/spanId'], ids.spanId);
    assert.is(inside!['logging.googleapis.com/trace_sampled'], true);
    assert.is(warning!.severity, 'WARNING', "Cloud Logging's name for it");
    assert.is(exporter.getFinishedSpans()[0]?.name, 'work');

    // A field named like the entry's own keys is kept beside them, never over them.
    const [clash] = await linesOf({}, (log) => log.warn('generation failed', { message: 'the model refused', severity: 'x' }));
    assert.is(clash!.message, 'generation failed');
    assert.is(clash!.severity, 'WARNING');
    assert.is(clash!.message_field, 'the model refused');

    // Without a project the trace id stands alone.
    const [bare] = await linesOf({}, (log) => withSpan('work', {}, () => log.info('x')));
    assert.match(String(bare!['logging.googleapis.com/trace']), /^[0-9a-f]{32}$/);
  } finally {
    await provider.shutdown();
    trace.disable();
    context.disable();
    propagation.disable();
  }
});

test('secrets are redacted at any depth; prompts only with LOG_PROMPTS', async () => {
  const fields = {
    authorization: 'Bearer sk-live-123',
    request: { headers: { 'x-api-key': 'k-456', cookie: 'session=789' }, runner_token: 'rt-0' },
    prompt: 'a secret sword',
    negative_prompt: 'blurry',
    body: '{"prompt":"a secret sword"}',
    id: 'g-1',
  };
  const [line] = await linesOf({}, (log) => log.info('x', fields));
  const text = JSON.stringify(line);
  for (const secret of ['sk-live-123', 'k-456', 'session=789', 'rt-0', 'a secret sword', 'blurry']) assert.not.ok(text.includes(secret), `${secret} kept out`);
  assert.is(line!.authorization, '[redacted]');
  assert.is((line!.request as { headers: Record<string, string> }).headers['x-api-key'], '[redacted]');
  assert.is(line!.id, 'g-1', 'the rest stays');

  const [withPrompts] = await linesOf({ prompts: true }, (log) => log.info('x', fields));
  assert.is(withPrompts!.prompt, 'a secret sword');
  assert.is(withPrompts!.authorization, '[redacted]', 'LOG_PROMPTS lets prompts through, never secrets');
});

test("each request's access log line: Cloud Logging's httpRequest, the path without its query", async () => {
  const log = recordingLogger();
  const t = await startTestGateway({ store: 'pglite', log });
  try {
    const res = await fetch(`${t.url}/healthz?token=s3cret`, { headers: { 'user-agent': 'itemgen-test/1' } });
    assert.is(res.status, 200);
    await res.arrayBuffer();
    const entry = await log.waitFor((e) => e.msg === 'request' && (e.fields.httpRequest as { requestUrl: string }).requestUrl === '/healthz');
    assert.is(entry.level, 'debug', 'Cloud Run logs requests itself: ours only when asked for');
    const r = entry.fields.httpRequest as Record<string, unknown>;
    assert.equal({ ...r, latency: undefined }, { requestMethod: 'GET', requestUrl: '/healthz', status: 200, latency: undefined, userAgent: 'itemgen-test/1', remoteIp: '127.0.0.1' });
    assert.match(String(r.latency), /^\d+\.\d{6}s$/, "a Duration as Cloud Logging reads it");
    assert.not.ok(JSON.stringify(log.entries).includes('s3cret'));
  } finally {
    await t.stop();
  }
});

test('configuration: traces on with an exporter or an OTLP endpoint, off otherwise', () => {
  assert.is(parseConfig({}).telemetry.exporter, null);
  assert.is(parseConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' }).telemetry.otlp.url, 'http://collector:4318/v1/traces');
  assert.is(parseConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }).telemetry.exporter, 'otlp');
  assert.is(parseConfig({ OTEL_TRACES_EXPORTER: 'gcp', GOOGLE_CLOUD_PROJECT: 'tsuki-prod' }).telemetry.project, 'tsuki-prod');
  assert.is(parseConfig({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_SDK_DISABLED: 'true' }).telemetry.exporter, null);
  assert.equal(parseConfig({ OTEL_EXPORTER_OTLP_HEADERS: 'x-token=a%20b,tenant=t1' }).telemetry.otlp.headers, { 'x-token': 'a b', tenant: 't1' });
  assert.throws(() => parseConfig({ OTEL_TRACES_SAMPLER_ARG: '2' }), /OTEL_TRACES_SAMPLER_ARG/);
  assert.throws(() => parseConfig({ OTEL_TRACES_EXPORTER: 'zipkin' }), /OTEL_TRACES_EXPORTER/);
  assert.throws(() => parseConfig({ OTEL_EXPORTER_OTLP_HEADERS: 'novalue' }), /OTEL_EXPORTER_OTLP_HEADERS/);
});

test('with no OTEL_* set, the product loads no SDK and records nothing', async () => {
  // A process of its own: this one has loaded the SDK for the tests above.
  const script = `
    import { registerHooks } from 'node:module';
    const loaded = [];
    registerHooks({ resolve(specifier, ctx, next) { const r = next(specifier, ctx); loaded.push(r.url); return r; } });
    const { parseConfig } = await import('./src/gateway/config.ts');
    const { startTelemetry, withSpan, currentTraceparent } = await import('./src/telemetry/index.ts');
    await import('./src/product.ts');
    const stop = await startTelemetry(parseConfig({}).telemetry, 'itemgen');
    const seen = await withSpan('work', {}, (span) => ({ recording: span.isRecording(), traceparent: currentTraceparent() }));
    await stop();
    const sdk = loaded.filter((u) => /@opentelemetry\\/(?!api\\/)|opentelemetry-cloud-trace/.test(u));
    process.stdout.write(JSON.stringify({ ...seen, sdk, api: loaded.some((u) => u.includes('@opentelemetry/api/')) }));`;
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: path.join(import.meta.dirname, '..', '..'),
  });
  const result = JSON.parse(stdout) as { recording: boolean; traceparent: string | null; sdk: string[]; api: boolean };
  assert.equal(result.sdk, [], 'no SDK, exporter or propagator module');
  assert.ok(result.api, 'the module list is real: the API is in it');
  assert.is(result.recording, false);
  assert.is(result.traceparent, null, 'nothing to store with a row or put in a message');
});

test.run();
