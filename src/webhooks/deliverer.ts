// The delivering half of the webhook outbox (migration 005). Triggers on generations write a
// message in the transaction of each change that causes one; this loop, in every gateway
// instance, leases due messages (FOR UPDATE SKIP LOCKED, so instances share them and a crashed
// one's lease runs out), POSTs them signed, records each attempt, and removes the message or
// schedules its retry (schedule.ts). The body is the generation as it is when the attempt is made
// (its current row), so a late or retried message never tells an older state than the newest.
// It wakes on NOTIFY when a message is written, at a retry's due time, and polls as a fallback.
import type { Logger } from '../core/log.ts';
import type { Generation } from '../store/generation.ts';
import type { Db } from '../store/types.ts';
import { dropWebhookMessage } from '../store/sql/dropWebhookMessage.ts';
import { ensureWebhookSecret } from '../store/sql/ensureWebhookSecret.ts';
import { getGeneration } from '../store/sql/getGeneration.ts';
import { insertWebhookDelivery } from '../store/sql/insertWebhookDelivery.ts';
import { leaseWebhookMessages, type WebhookMessage } from '../store/sql/leaseWebhookMessages.ts';
import { rescheduleWebhookMessage } from '../store/sql/rescheduleWebhookMessage.ts';
import { settleWebhookMessage } from '../store/sql/settleWebhookMessage.ts';
import type { TargetPolicy } from './policy.ts';
import { postWebhook, type PostOutcome } from './post.ts';
import { retryAfterMs, retryDelayMs } from './schedule.ts';
import { newWebhookSecret, signedHeaders } from './sign.ts';
import { contextFrom, GENERATION_ID, SpanKind, withSpan, type Span } from '../telemetry/index.ts';

export const WEBHOOK_CHANNEL = 'itemgen_webhook_due';

/** What became of an attempt (the outcome label of itemgen_webhook_deliveries_total). */
export type AttemptOutcome = 'delivered' | 'retrying' | 'failed' | 'refused' | 'gave_up';

export interface DelivererOptions {
  db: Db;
  log: Logger;
  policy: TargetPolicy;
  /** The body: the generation as GET /v1/generations/{id} shows it. */
  present: (g: Generation) => unknown;
  /** Longest an attempt may take, connecting and answering together. */
  timeoutMs: number;
  /** Scale of the retry waits (schedule.ts). */
  retryBaseMs: number;
  /** Messages older than this are not retried again. */
  retryWindowMs: number;
  /** Attempts in flight at once in this instance. */
  concurrency: number;
  /** Fallback poll for messages other instances left due (their retries, expired leases). */
  pollMs: number;
  onAttempt?: (outcome: AttemptOutcome) => void;
}

export interface Deliverer {
  /** Interrupts the attempts in flight (recorded, and retried as network errors are), then stops. */
  stop(): Promise<void>;
}

export async function startDeliverer(o: DelivererOptions): Promise<Deliverer> {
  const leaseSeconds = Math.ceil(o.timeoutMs / 1000) + 60;
  const secrets = new Map<string, string>();
  const inFlight = new Set<Promise<void>>();
  const timers = new Set<NodeJS.Timeout>();
  // Stopping cuts the attempts in flight short: they are recorded and retried (by the next instance).
  const stopping = new AbortController();
  let stopped = false;
  let wanted = true;
  let signal: (() => void) | null = null;
  const wake = () => {
    wanted = true;
    signal?.();
  };
  const wakeAt = (ms: number) => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      wake();
    }, Math.max(0, ms));
    timer.unref();
    timers.add(timer);
  };

  const unlisten = await o.db.listen(WEBHOOK_CHANNEL, wake, wake);
  const poll = setInterval(wake, o.pollMs);
  poll.unref();

  const secretOf = async (apiKeyId: string) => {
    let secret = secrets.get(apiKeyId);
    if (!secret) {
      secret = (await ensureWebhookSecret(o.db, apiKeyId, newWebhookSecret())) ?? undefined;
      if (!secret) return null;
      secrets.set(apiKeyId, secret);
    }
    return secret;
  };

  const deliver = async (m: WebhookMessage) => {
    const g = await getGeneration(o.db, m.generationId);
    // Gone, or a progress message overtaken by the generation's end (its completed message tells it).
    const url = g?.webhookUrl;
    if (!g || !url || (m.event === 'progress' && g.status !== 'processing')) return dropWebhookMessage(o.db, m.id);
    const secret = await secretOf(g.apiKeyId);
    if (!secret) return dropWebhookMessage(o.db, m.id);
    // Each attempt is a span in its generation's trace (the submit's, stored with the row).
    const attributes = { [GENERATION_ID]: g.id, 'itemgen.webhook.event': m.event, 'itemgen.webhook.attempt': m.attempt };
    const answered = (span: Span) => (status: number) => span.setAttribute('http.response.status_code', status);
    await withSpan('webhook attempt', attributes, (span) => attempt(m, g, url, secret, answered(span)), {
      kind: SpanKind.CLIENT,
      parent: contextFrom(g.traceparent),
    });
  };

  const attempt = async (m: WebhookMessage, g: Generation, url: string, secret: string, answered: (status: number) => void) => {
    const body = JSON.stringify(o.present(g));
    const attemptedAt = new Date();
    const started = performance.now();
    const outcome = await postWebhook(url, signedHeaders(secret, m.id, attemptedAt, body), body, {
      policy: o.policy,
      timeoutMs: o.timeoutMs,
      signal: stopping.signal,
    });
    const durationMs = Math.round(performance.now() - started);
    if (outcome.kind === 'answered') answered(outcome.status);
    const verdict = judge(outcome);
    let retryAt: Date | null = null;
    let result: AttemptOutcome = verdict.ok ? 'delivered' : verdict.retry ? 'retrying' : outcome.kind === 'refused' ? 'refused' : 'failed';
    if (verdict.retry) {
      const wait = Math.max(retryDelayMs(m.attempt, o.retryBaseMs), retryAfterMs(verdict.retryAfter, o.retryBaseMs, Date.now()) ?? 0);
      if (Date.now() + wait - m.createdAt.getTime() <= o.retryWindowMs) retryAt = new Date(Date.now() + wait);
      else result = 'gave_up';
    }
    await o.db.transaction(async (tx) => {
      await insertWebhookDelivery(tx, {
        messageId: m.id,
        generationId: m.generationId,
        event: m.event,
        url,
        attempt: m.attempt,
        attemptedAt,
        statusCode: outcome.kind === 'answered' ? outcome.status : null,
        durationMs,
        error: verdict.error,
        willRetry: retryAt !== null,
      });
      if (verdict.ok) await settleWebhookMessage(tx, m.id, m.revision);
      else if (retryAt) await rescheduleWebhookMessage(tx, m.id, retryAt);
      else await dropWebhookMessage(tx, m.id);
    });
    if (retryAt && !stopped) wakeAt(retryAt.getTime() - Date.now());
    o.onAttempt?.(result);
  };

  const track = (m: WebhookMessage) => {
    const p = deliver(m)
      .catch((err) => o.log.warn('webhook delivery interrupted; the message is taken again when its lease runs out', { err, id: m.id }))
      .finally(() => {
        inFlight.delete(p);
        wake();
      });
    inFlight.add(p);
  };

  const loop = async () => {
    while (!stopped) {
      if (!wanted) {
        await new Promise<void>((resolve) => (signal = resolve));
        signal = null;
        continue;
      }
      wanted = false;
      const free = o.concurrency - inFlight.size;
      if (free <= 0) continue;
      try {
        for (const m of await leaseWebhookMessages(o.db, free, leaseSeconds)) track(m);
      } catch (err) {
        o.log.warn('webhook outbox unavailable; tried again at the next poll', { err });
      }
    }
  };
  const running = loop();

  return {
    async stop() {
      stopped = true;
      clearInterval(poll);
      for (const t of timers) clearTimeout(t);
      signal?.();
      await running;
      stopping.abort();
      await Promise.allSettled([...inFlight]);
      await unlisten();
    },
  };
}

interface Verdict {
  ok: boolean;
  retry: boolean;
  /** Retry-After of a 429 or 5xx answer. */
  retryAfter?: string | undefined;
  error: string | null;
}

/**
 * 2xx: delivered. Network errors, timeouts, 5xx and 429: retried. Refusals by the target policy
 * (at connect time too: a name that now resolves to a private address), redirects (never
 * followed) and every other status: failed for good, since repeating them would get the same.
 */
function judge(outcome: PostOutcome): Verdict {
  if (outcome.kind === 'refused') return { ok: false, retry: false, error: outcome.error };
  if (outcome.kind === 'failed') return { ok: false, retry: true, error: outcome.error };
  const { status } = outcome;
  if (status >= 200 && status < 300) return { ok: true, retry: false, error: null };
  const excerpt = outcome.excerpt.trim().slice(0, 200);
  const error = `HTTP ${status}${excerpt ? `: ${excerpt}` : ''}`;
  if (status >= 300 && status < 400) {
    const location = outcome.headers.location;
    return { ok: false, retry: false, error: `HTTP ${status}: redirect${location ? ` to ${String(location).slice(0, 200)}` : ''} not followed` };
  }
  if (status === 429 || status >= 500) {
    const header = outcome.headers['retry-after'];
    return { ok: false, retry: true, retryAfter: Array.isArray(header) ? header[0] : header, error };
  }
  return { ok: false, retry: false, error };
}
