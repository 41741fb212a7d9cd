// The runner's side of the gateway's internal API (/internal/v1, docs/architecture.md, decision 1): claim,
// progress (the heartbeat), complete and fail. Transient failures (network errors, timeouts, 5xx,
// 429) are retried with full-jitter exponential backoff, bounded in tries and in time; what the
// gateway decided (a 409 or 404) comes back as a typed refusal the worker acts on, never as an error.
// The bodies, the claim's answer and the 409 codes are the contract's (src/core/internal-api.ts).
import { z } from 'zod';
import {
  internalApi,
  isStopCode,
  type ConflictCode,
  type ConflictProblem,
  type InternalBody,
  type InternalOperation,
  type ModelDescription,
  type RanReport,
  type RunnerTimings,
  type StopCode,
} from '../core/internal-api.ts';
import type { Logger } from '../core/log.ts';
import type { GenerationParams } from '../core/request.ts';
import { realClock, RetriesExhaustedError, withRetry, type Clock, type RetryPolicy } from '../core/retry.ts';
import { toStorableText } from '../core/text.ts';
import type { StoredImageRef } from '../storage/types.ts';
import { GENERATION_ID, SpanKind, traceHeaders, withSpan } from '../telemetry/index.ts';

export interface Claim {
  id: string;
  /** The claim's number; progress, complete and fail must carry it. */
  attempt: number;
  params: GenerationParams;
  leaseExpiresAt: Date;
  leaseSeconds: number;
  /** Submit → claim as the gateway counts it, when it says. */
  queuedMs?: number;
}

/** Why the gateway did not apply a call; nothing changed. */
export type Refusal =
  /** Stop working on the generation: finished, canceled, or the claim is no longer this runner's. */
  | { ok: false; code: StopCode | 'not_found'; message: string }
  /** Another runner's lease is live; the generation can be claimed again after `retryAfterMs`. */
  | { ok: false; code: Extract<ConflictCode, 'claimed'>; message: string; retryAfterMs: number }
  /** Any other 4xx: a bug or a misconfiguration (a wrong RUNNER_TOKEN answers 401). */
  | { ok: false; code: 'refused'; status: number; problemCode: string; message: string };

export type ClaimResult = { ok: true; claim: Claim } | Refusal;
export type ReportResult = { ok: true } | Refusal;

export interface CallOptions {
  /** Aborts the call and its retries (the runner is stopping). */
  signal?: AbortSignal;
}

export interface ProgressOptions extends CallOptions {
  /** The latest preview PNG (src/runner/pipeline/latent-preview.ts), sent with this report. */
  preview?: Buffer;
}

export interface CompleteOptions extends CallOptions {
  /** What ran: effective prompts, model, execution provider. */
  ran?: RanReport;
  timings?: RunnerTimings;
}

/** A stored image with the seed it ran with. */
export type CompletedImage = StoredImageRef & { seed?: number };

export interface GatewayClient {
  claim(id: string, runnerId: string, options?: CallOptions): Promise<ClaimResult>;
  progress(id: string, attempt: number, step: number, total: number, options?: ProgressOptions): Promise<ReportResult>;
  complete(id: string, attempt: number, images: CompletedImage[], options?: CompleteOptions): Promise<ReportResult>;
  fail(id: string, attempt: number, code: string, message: string, options?: CallOptions): Promise<ReportResult>;
  /** Gives up the claim's lease (the runner is stopping): the next claim need not wait for it. */
  release(id: string, attempt: number, options?: CallOptions): Promise<ReportResult>;
  /** Tells the gateway which model this runner serves (GET /v1/models lists it). */
  registerModel(model: ModelDescription, options?: CallOptions): Promise<ReportResult>;
}

/** The gateway could not be reached (or kept answering 5xx/429) for as long as the retry policy allows. */
export class GatewayUnavailableError extends Error {
  override name = 'GatewayUnavailableError';
  constructor(operation: string, tries: number, cause: unknown) {
    super(`gateway unavailable for ${operation} after ${tries} tries: ${(cause as Error).message}`, { cause });
  }
}

/** A response that may be different later: 5xx or 429. */
class TransientResponseError extends Error {
  override name = 'TransientResponseError';
  constructor(
    readonly status: number,
    readonly retryAfterMs: number | undefined,
  ) {
    super(`gateway answered ${status}`);
  }
}

export interface GatewayClientOptions {
  baseUrl: string;
  token: string;
  /** Per request, the whole response included. */
  timeoutMs: number;
  retry: RetryPolicy;
  fetch?: typeof fetch;
  clock?: Clock;
  log?: Logger;
  /** Called before each retry (metrics). */
  onRetry?: (operation: string) => void;
}

// Any refusal's problem document, read leniently: a 4xx may come from a proxy in front of the
// gateway. The keys are the contract's (a renamed one fails the type check).
const problemBody = z.looseObject({
  code: z.string().optional(),
  detail: z.string().optional(),
  retry_after_s: z.number().optional(),
} satisfies Partial<Record<keyof ConflictProblem, z.ZodType>>);

export function createGatewayClient(options: GatewayClientOptions): GatewayClient {
  const base = options.baseUrl.replace(/\/+$/, '');
  const doFetch = options.fetch ?? fetch;
  const clock = options.clock ?? realClock;

  /**
   * One call, in a span of its own whose context the gateway continues (its retries included): the
   * parsed 200 body, or the refusal. Retries what may pass; throws GatewayUnavailableError when it did not.
   */
  const call = <Op extends InternalOperation>(operation: Op, id: string, body: InternalBody<Op>, callOptions: CallOptions = {}) => {
    const { method, path } = internalApi[operation];
    const attributes = { 'http.request.method': method.toUpperCase(), 'url.template': `/internal/v1${path}`, ...(path.startsWith('/generations/') ? { [GENERATION_ID]: id } : {}) };
    return withSpan(operation, attributes, () => callOnce(operation, id, body, callOptions), { kind: SpanKind.CLIENT });
  };

  const callOnce = async <Op extends InternalOperation>(
    operation: Op,
    id: string,
    body: InternalBody<Op>,
    callOptions: CallOptions,
  ): Promise<{ ok: true; body: unknown } | Refusal> => {
    const { method, path } = internalApi[operation];
    const url = `${base}/internal/v1${path.replace(/\{\w+\}/, encodeURIComponent(id))}`;
    const attempt = async () => {
      const timeout = AbortSignal.timeout(options.timeoutMs);
      const signal = callOptions.signal ? AbortSignal.any([callOptions.signal, timeout]) : timeout;
      const res = await doFetch(url, {
        method: method.toUpperCase(),
        headers: { authorization: `Bearer ${options.token}`, 'content-type': 'application/json', ...traceHeaders() },
        body: JSON.stringify(body),
        signal,
      });
      const text = await res.text();
      if (res.status >= 500 || res.status === 429) throw new TransientResponseError(res.status, retryAfterMs(res.headers.get('retry-after')));
      return { res, text };
    };
    let answer: Awaited<ReturnType<typeof attempt>>;
    try {
      answer = await withRetry(attempt, options.retry, {
        clock,
        ...(callOptions.signal ? { signal: callOptions.signal } : {}),
        retryAfterMs: (err) => (err instanceof TransientResponseError ? err.retryAfterMs : undefined),
        onRetry: (err, tries, wait) => {
          options.log?.debug('gateway call failed; retrying', { operation, id, tries, delay_ms: Math.round(wait), err });
          options.onRetry?.(operation);
        },
      });
    } catch (err) {
      if (err instanceof RetriesExhaustedError) throw new GatewayUnavailableError(operation, err.tries, err.cause);
      throw err;
    }
    const { res, text } = answer;
    if (res.ok) return { ok: true, body: text ? JSON.parse(text) : null };
    return refusal(res, text);
  };

  return {
    async claim(id, runnerId, callOptions) {
      const answer = await call('claim', id, { runner_id: runnerId }, callOptions);
      if (!answer.ok) return answer;
      const c = internalApi.claim.answer.parse(answer.body);
      return {
        ok: true,
        claim: {
          id: c.id,
          attempt: c.attempt,
          params: c.params,
          leaseExpiresAt: new Date(c.lease_expires_at),
          leaseSeconds: c.lease_seconds,
          ...(c.queued_ms === undefined ? {} : { queuedMs: c.queued_ms }),
        },
      };
    },
    async progress(id, attempt, step, total, callOptions) {
      const preview = callOptions?.preview;
      const answer = await call('progress', id, { attempt, step, total, ...(preview ? { preview: preview.toString('base64') } : {}) }, callOptions);
      return answer.ok ? { ok: true } : answer;
    },
    async complete(id, attempt, images, callOptions = {}) {
      // Only the fields the gateway takes: it refuses unknown ones.
      const { ran, timings } = callOptions;
      const body = {
        attempt,
        images: images.map(({ key, url, seed }) => ({ key, url, ...(seed === undefined ? {} : { seed }) })),
        ...(ran ? { ran } : {}),
        ...(timings ? { timings } : {}),
      };
      const answer = await call('complete', id, body, callOptions);
      return answer.ok ? { ok: true } : answer;
    },
    async fail(id, attempt, code, message, callOptions) {
      // The gateway refuses text PostgreSQL cannot store (and an error's text may carry anything).
      const answer = await call('fail', id, { attempt, code, message: toStorableText(message.slice(0, 2000)) }, callOptions);
      return answer.ok ? { ok: true } : answer;
    },
    async release(id, attempt, callOptions) {
      const answer = await call('release', id, { attempt }, callOptions);
      return answer.ok ? { ok: true } : answer;
    },
    async registerModel(model, callOptions) {
      const answer = await call('registerModel', model.name, model, callOptions);
      return answer.ok ? { ok: true } : answer;
    },
  };
}

function retryAfterMs(header: string | null): number | undefined {
  if (header === null || !/^\d+$/.test(header.trim())) return undefined;
  return Number(header) * 1000;
}

function refusal(res: Response, text: string): Refusal {
  let problem: z.infer<typeof problemBody> = {};
  try {
    problem = problemBody.parse(JSON.parse(text));
  } catch {
    // Not problem+json (a proxy's page): the status alone says enough.
  }
  const code = problem.code ?? `http_${res.status}`;
  const message = problem.detail ?? (text.slice(0, 200) || res.statusText);
  // Only the gateway's own 404 means "no such generation"; a 404 page of something else at
  // GATEWAY_URL must not make the runner drop its jobs.
  if (res.status === 404 && code === 'not_found') return { ok: false, code: 'not_found', message };
  if (res.status === 409 && code === ('claimed' satisfies ConflictCode)) {
    const wait = retryAfterMs(res.headers.get('retry-after')) ?? (problem.retry_after_s ?? 1) * 1000;
    return { ok: false, code: 'claimed', message, retryAfterMs: wait };
  }
  if (res.status === 409 && isStopCode(code)) return { ok: false, code, message };
  return { ok: false, code: 'refused', status: res.status, problemCode: code, message };
}
