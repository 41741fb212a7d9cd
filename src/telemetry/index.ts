// Traces across the gateway, the queue and the runner (docs/architecture.md, decision 15). Call
// sites use only what is here, on @opentelemetry/api: without an SDK that API is a no-op, so with
// no OTEL_* configuration nothing is recorded, and the SDK itself (./sdk.ts) is imported only when
// the configuration turns traces on. Imports nothing of the gateway, the runner or the store.
import {
  context,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  TraceFlags,
  type Attributes,
  type Context,
  type Link,
  type Span,
  type TextMapGetter,
} from '@opentelemetry/api';

export { SpanKind, SpanStatusCode, type Span } from '@opentelemetry/api';

export type { TelemetryConfig, TraceSampler } from './config.ts';
import type { TelemetryConfig } from './config.ts';

/** The attribute a generation's spans carry its id in: searchable in Cloud Trace and Jaeger alike. */
export const GENERATION_ID = 'itemgen.generation.id';

/** Taken again whenever the SDK starts or stops: a tracer belongs to the provider registered when it was taken. */
let tracer = trace.getTracer('itemgen');

/** The process's one SDK: the gateway and the runner of the embedded product share it. */
let sdk: { users: number; stop: Promise<() => Promise<void>> } | null = null;

/**
 * Whether the configured sampler decides a child as its parent was decided (the `parentbased_*`
 * samplers, and `always_off`, which samples nothing). Then a span under a parent that is not
 * sampled can only be a non-recording span in the same trace, and startSpan hands back the
 * parent's own instead of asking the SDK for a new one: most of a 10 %-sampled gateway's spans
 * are such children (the publish of every unsampled submit, the runner's spans of its job), and
 * the SDK's id generation, sampler and span-metrics on each were a measurable share of a submit's
 * CPU (docs/architecture.md, decision 15).
 */
let childFollowsParent = false;

/**
 * Starts the SDK when `config` turns traces on (once per process; later callers share it) and
 * resolves to the function that stops it, exporting what is buffered; the last stop unregisters
 * it, so the API is a no-op again. `warn` hears the SDK's own troubles (exports that fail).
 */
export async function startTelemetry(
  config: TelemetryConfig,
  defaultServiceName: string,
  warn: (message: string) => void = () => {},
): Promise<() => Promise<void>> {
  if (config.exporter === null) return async () => {};
  if (sdk) sdk.users += 1;
  else {
    // The SDK's sampler is the first caller's, and so is this.
    childFollowsParent = config.sampler.startsWith('parentbased_') || config.sampler === 'always_off';
    sdk = { users: 1, stop: import('./sdk.ts').then((m) => m.startSdk(config, defaultServiceName, warn)) };
  }
  const mine = sdk;
  let stopped = false;
  try {
    await mine.stop;
  } catch (err) {
    if (sdk === mine) sdk = null;
    throw err;
  }
  tracer = trace.getTracer('itemgen');
  return async () => {
    if (stopped) return;
    stopped = true;
    mine.users -= 1;
    if (mine.users > 0) return;
    if (sdk === mine) sdk = null;
    try {
      await (await mine.stop)();
    } finally {
      tracer = trace.getTracer('itemgen');
    }
  };
}

/** Whether a span recorded here would go anywhere: lets callers skip the work of naming one. */
export function recording(): boolean {
  return trace.getActiveSpan()?.isRecording() ?? false;
}

export interface SpanOptions {
  kind?: SpanKind;
  /** Instead of the active context: where a trace continues after a queue or a database row. */
  parent?: Context;
  links?: Link[];
}

/**
 * Runs `fn` in a new active span named `name`: ended when `fn` settles, with the error recorded
 * when it throws.
 */
export function withSpan<T>(name: string, attributes: Attributes, fn: (span: Span) => Promise<T> | T, options: SpanOptions = {}): Promise<T> {
  const span = startSpan(name, attributes, options);
  return withActive(span, async () => {
    try {
      return await fn(span);
    } catch (err) {
      failed(span, err);
      throw err;
    } finally {
      span.end();
    }
  });
}

/**
 * A span the caller ends (its work is not one function: a batch's confirms, a response's end).
 * Its attributes are set only once it is known to record: the samplers here never read them, and
 * most spans of a sampled-down trace are not recorded.
 */
export function startSpan(name: string, attributes: Attributes, options: SpanOptions = {}): Span {
  const { parent = context.active(), ...rest } = options;
  const unsampledParent = childFollowsParent && rest.links === undefined ? notSampled(trace.getSpan(parent)) : undefined;
  if (unsampledParent) return unsampledParent;
  const span = tracer.startSpan(name, rest, parent);
  if (span.isRecording()) span.setAttributes(attributes);
  return span;
}

/** `span` when it is a valid span that is neither sampled nor recording: a trace sampled out. */
function notSampled(span: Span | undefined): Span | undefined {
  if (span === undefined || span.isRecording()) return undefined;
  const { traceFlags } = span.spanContext();
  return (traceFlags & TraceFlags.SAMPLED) === 0 && trace.isSpanContextValid(span.spanContext()) ? span : undefined;
}

/** Runs `fn` with `span` active: as it is when `span` is already `parent`'s (a sampled-out child, see startSpan). */
export function withActive<T>(span: Span, fn: () => T, parent: Context = context.active()): T {
  if (trace.getSpan(parent) === span) return parent === context.active() ? fn() : context.with(parent, fn);
  return context.with(trace.setSpan(parent, span), fn);
}

export function failed(span: Span, err: unknown): void {
  if (err instanceof Error) span.recordException(err);
  span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
}

/** Sets an attribute on the active span, if one records (an id learnt after the span began). */
export function annotate(attributes: Attributes): void {
  const span = trace.getActiveSpan();
  if (span?.isRecording()) span.setAttributes(attributes);
}

/** The W3C trace context headers (`traceparent`, `tracestate`) of `span`, or of the active context; empty when traces are off. */
export function traceHeaders(span?: Span): Record<string, string> {
  const carrier: Record<string, string> = {};
  propagation.inject(span ? trace.setSpan(context.active(), span) : context.active(), carrier);
  return carrier;
}

/** The `traceparent` to store with a row, so that later work on it joins this trace; null when none. */
export function currentTraceparent(): string | null {
  return traceHeaders().traceparent ?? null;
}

/** Reads W3C headers from a request's headers, an AMQP message's (strings or Buffers), or `{ traceparent }`. */
const headerGetter: TextMapGetter<Record<string, unknown>> = {
  keys: (c) => Object.keys(c),
  get: (c, key) => {
    const v = c[key];
    return typeof v === 'string' ? v : Buffer.isBuffer(v) ? v.toString('latin1') : undefined;
  },
};

/** The context that headers (or a stored `traceparent`) carry; the empty context without one. */
export function contextFrom(headers: Record<string, unknown> | string | null | undefined): Context {
  if (headers == null) return ROOT_CONTEXT;
  const carrier = typeof headers === 'string' ? { traceparent: headers } : headers;
  // Without a traceparent there is nothing to continue (a designer's request, a job of an untraced gateway).
  if (carrier.traceparent === undefined) return ROOT_CONTEXT;
  return propagation.extract(ROOT_CONTEXT, carrier, headerGetter);
}

/** The active span's ids, for log lines (src/core/log.ts); null outside a sampled span. */
export function activeSpanIds(): { traceId: string; spanId: string; sampled: boolean } | null {
  const span = trace.getActiveSpan();
  if (!span) return null;
  const { traceId, spanId, traceFlags } = span.spanContext();
  return { traceId, spanId, sampled: (traceFlags & 1) === 1 };
}
