// One trace per generation, end to end (issue 14, criteria 1 and 6): the product (gateway and runner
// in one process, tiny model) on real RabbitMQ, exporting OTLP/HTTP JSON to a receiver in this test.
// The submit's span, the publish, the runner's spans (across the broker), the completion and the
// webhook attempt must all be in one trace, each linked to the one before it.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startEmbeddedProduct } from '../helpers/product.ts';
import { deleteTopology } from '../helpers/queue.ts';
import { AMQP_URL, uniqueName } from '../helpers/services.ts';
import { submit } from '../helpers/submit.ts';

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number;
  boolValue?: boolean;
  arrayValue?: { values?: OtlpValue[] };
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes?: { key: string; value: OtlpValue }[];
}

const value = (v: OtlpValue): unknown =>
  v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : undefined) ?? v.doubleValue ?? v.boolValue ?? v.arrayValue?.values?.map(value);
const attr = (s: OtlpSpan, key: string) => {
  const found = s.attributes?.find((a) => a.key === key);
  return found ? value(found.value) : undefined;
};

/** An OTLP/HTTP JSON trace receiver and a webhook receiver on one loopback server. */
async function startReceiver() {
  const spans: OtlpSpan[] = [];
  const hooks: { id: string; status: string }[] = [];
  const hookWaiters: (() => void)[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (c: string) => (body += c));
    req.on('end', () => {
      if (req.url === '/v1/traces') {
        assert.is(req.headers['content-type'], 'application/json', 'OTLP over HTTP with JSON, as configured');
        const doc = JSON.parse(body) as { resourceSpans: { scopeSpans: { spans: OtlpSpan[] }[] }[] };
        for (const r of doc.resourceSpans) for (const s of r.scopeSpans) spans.push(...s.spans);
      } else if (req.url === '/hook') {
        hooks.push(JSON.parse(body) as { id: string; status: string });
        for (const w of hookWaiters.splice(0)) w();
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const hookFor = async (id: string) => {
    while (!hooks.some((h) => h.id === id)) await new Promise<void>((resolve) => hookWaiters.push(resolve));
    return hooks.find((h) => h.id === id)!;
  };
  return { url, spans, hookFor, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

test('one trace joins the submit, the publish, the runner across RabbitMQ, the completion and the webhook', async () => {
  const receiver = await startReceiver();
  const prefix = uniqueName('itemgen_trace');
  const steps = 3;
  try {
    const p = await startEmbeddedProduct({
      AMQP_URL,
      AMQP_PREFIX: prefix,
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_SERVICE_NAME: 'itemgen-test',
    });
    let id: string;
    try {
      assert.is(p.product.gateway.queue.kind, 'amqp', 'the job crosses the real broker');
      id = await submit(p.url, {
        prompt: 'a traced sword',
        num_inference_steps: steps,
        width: 256,
        height: 256,
        webhook: `${receiver.url}/hook`,
        webhook_events_filter: ['completed'],
      });
      assert.is((await receiver.hookFor(id)).status, 'completed');
    } finally {
      // Stopping flushes the batched spans to the receiver.
      await p.stop();
    }

    const spans = receiver.spans;
    const named = (name: string) => spans.filter((s) => s.name === name);
    const one = (name: string) => {
      const found = named(name).filter((s) => s.traceId === trace);
      assert.is(found.length, 1, `one "${name}" span in the trace; spans seen: ${[...new Set(spans.map((s) => s.name))].join(', ')}`);
      return found[0]!;
    };
    const submitSpan = named('POST /v1/generations')[0];
    assert.ok(submitSpan, 'the submit request has a server span');
    const trace = submitSpan.traceId;
    assert.is(attr(submitSpan, 'itemgen.generation.id'), id, 'the submit span names its generation');

    const publish = one('publish generation');
    assert.is(publish.parentSpanId, submitSpan.spanId, 'the publish continues the submit (its context stored with the row)');
    const processing = one('process generation');
    assert.is(processing.parentSpanId, publish.spanId, "the runner continues the publish's span from the message headers");
    assert.is(attr(processing, 'itemgen.generation.id'), id);
    assert.is(attr(processing, 'itemgen.job.action'), 'ack', 'how the message was settled');

    for (const name of ['claim', 'text encoder', 'denoise', 'vae decode', 'png', 'upload', 'complete']) {
      assert.is(one(name).parentSpanId, processing.spanId, `"${name}" is a step of the runner's job`);
    }
    const denoise = one('denoise');
    assert.is(attr(denoise, 'itemgen.denoise.steps'), steps, 'one denoise span says how many steps');
    const perStep = attr(denoise, 'itemgen.denoise.step_ms') as number[];
    assert.is(perStep.length, steps, 'and how long each took');
    assert.ok(perStep.every((ms) => ms >= 0));
    assert.is(named('denoise').length, 1, 'no span per step');

    // The gateway continues the runner's internal calls, and its store calls are named by statement.
    const completeServer = one('POST /internal/v1/generations/:id/complete');
    assert.is(completeServer.parentSpanId, one('complete').spanId);
    assert.is(one('completeGeneration').parentSpanId, completeServer.spanId);
    assert.is(one('POST /internal/v1/generations/:id/claim').parentSpanId, one('claim').spanId);
    assert.is(one('insertGeneration').parentSpanId, submitSpan.spanId);
    for (const s of spans) for (const a of s.attributes ?? []) assert.not.ok(JSON.stringify(a.value).includes('a traced sword'), `no prompt in ${s.name}'s attributes`);

    const webhook = one('webhook attempt');
    assert.is(webhook.parentSpanId, submitSpan.spanId, "the webhook attempt joins its generation's trace");
    assert.is(attr(webhook, 'http.response.status_code'), 200);
  } finally {
    await receiver.close();
    await deleteTopology(AMQP_URL, prefix);
  }
});

test.run();
