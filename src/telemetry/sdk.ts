// The OpenTelemetry trace SDK, imported by index.ts only when OTEL_* turns traces on: a provider
// with the configured sampler and exporter (OTLP over HTTP, protobuf or JSON, or Google Cloud
// Trace), batched export, W3C trace context propagation and async-context tracking.
import { context, diag, DiagLogLevel, propagation, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  type Sampler,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import type { TelemetryConfig, TraceSampler } from './config.ts';

/** The SDK's error handler hands an error over as its JSON (stack included): its message is what to say. */
function describe(arg: unknown): string {
  if (arg instanceof Error) return arg.message;
  if (typeof arg !== 'string') return JSON.stringify(arg);
  if (!arg.startsWith('{')) return arg;
  try {
    const parsed = JSON.parse(arg) as { message?: unknown };
    return typeof parsed.message === 'string' ? parsed.message : arg;
  } catch {
    return arg;
  }
}

function sampler(kind: TraceSampler, ratio: number): Sampler {
  const root = kind.endsWith('always_off') ? new AlwaysOffSampler() : kind.endsWith('traceidratio') ? new TraceIdRatioBasedSampler(ratio) : new AlwaysOnSampler();
  return kind.startsWith('parentbased_') ? new ParentBasedSampler({ root }) : root;
}

async function exporter(config: TelemetryConfig): Promise<SpanExporter> {
  if (config.exporter === 'gcp') {
    const { TraceExporter } = await import('@google-cloud/opentelemetry-cloud-trace-exporter');
    return new TraceExporter(config.project ? { projectId: config.project } : {});
  }
  const options = { url: config.otlp.url, headers: config.otlp.headers };
  if (config.otlp.protocol === 'http/json') return new (await import('@opentelemetry/exporter-trace-otlp-http')).OTLPTraceExporter(options);
  return new (await import('@opentelemetry/exporter-trace-otlp-proto')).OTLPTraceExporter(options);
}

/**
 * Registers the SDK globally; resolves to the function that flushes it and unregisters it. The
 * SDK's own warnings and errors (a failed export, spans dropped) go to `warn`: otherwise silent.
 */
export async function startSdk(config: TelemetryConfig, defaultServiceName: string, warn: (message: string) => void): Promise<() => Promise<void>> {
  // A collector that is down fails every batch: said once a minute, with how many were not.
  let saidAt = -Infinity;
  let unsaid = 0;
  const say = (...args: unknown[]) => {
    if (performance.now() - saidAt < 60_000) return void (unsaid += 1);
    saidAt = performance.now();
    warn(args.map(describe).join(' ') + (unsaid > 0 ? ` (and ${unsaid} more in the last minute)` : ''));
    unsaid = 0;
  };
  const quiet = () => {};
  diag.setLogger({ error: say, warn: say, info: quiet, debug: quiet, verbose: quiet }, DiagLogLevel.WARN);
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ ...config.resourceAttributes, [ATTR_SERVICE_NAME]: config.serviceName ?? defaultServiceName }),
    sampler: sampler(config.sampler, config.samplerRatio),
    spanProcessors: [new BatchSpanProcessor(await exporter(config))],
  });
  provider.register({ propagator: new W3CTraceContextPropagator() });
  return async () => {
    try {
      // Exports what is buffered; rejects when the collector cannot be reached.
      await provider.shutdown();
    } finally {
      diag.disable();
      trace.disable();
      context.disable();
      propagation.disable();
    }
  };
}
