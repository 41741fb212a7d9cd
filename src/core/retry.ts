// Retries of transient failures with full-jitter exponential backoff, bounded in tries and in
// time: the runner's calls to the gateway and its image uploads share this one implementation.
// Time comes from a Clock so that tests drive the waits instead of sleeping through them.
import { setTimeout as delay } from 'node:timers/promises';

/** Retries of transient failures: full-jitter exponential backoff, bounded in count and in time. */
export interface RetryPolicy {
  /** Tries in all, the first one included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** No retry starts after this long since the first try. */
  maxElapsedMs: number;
}

export interface Clock {
  /** Resolves after `ms`; rejects when the signal aborts first (the real clock: an AbortError whose cause is the reason). */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /** Milliseconds on a monotonic clock: durations only. */
  now(): number;
  /** In [0, 1): the jitter. */
  random(): number;
}

export const realClock: Clock = {
  sleep: (ms, signal) => delay(ms, undefined, signal ? { signal } : {}),
  now: () => performance.now(),
  random: Math.random,
};

export interface RetryOptions {
  clock?: Clock;
  signal?: AbortSignal;
  /** Whether a failure may pass with time; others are thrown at once. Default: all may. */
  isTransient?: (err: unknown) => boolean;
  /** A server-given lower bound for the next delay (Retry-After). */
  retryAfterMs?: (err: unknown) => number | undefined;
  onRetry?: (err: unknown, tries: number, delayMs: number) => void;
}

export class RetriesExhaustedError extends Error {
  override name = 'RetriesExhaustedError';
  constructor(
    readonly tries: number,
    override readonly cause: unknown,
  ) {
    super(`${(cause as Error).message} (after ${tries} tries)`, { cause });
  }
}

/**
 * Runs `task` until it succeeds, retrying transient failures with full-jitter exponential backoff
 * (a random delay up to base·2ⁿ, capped). Gives up with RetriesExhaustedError after
 * `policy.attempts` tries or when the next retry would start after `policy.maxElapsedMs`; a
 * failure that is not transient, or an abort, is thrown as it is.
 */
export async function withRetry<T>(task: (tries: number) => Promise<T>, policy: RetryPolicy, options: RetryOptions = {}): Promise<T> {
  const clock = options.clock ?? realClock;
  const started = clock.now();
  for (let tries = 1; ; tries++) {
    try {
      return await task(tries);
    } catch (err) {
      if (options.signal?.aborted) throw options.signal.reason;
      if (options.isTransient && !options.isTransient(err)) throw err;
      if (tries >= policy.attempts) throw new RetriesExhaustedError(tries, err);
      const backoff = clock.random() * Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (tries - 1));
      const wait = Math.min(policy.maxDelayMs, Math.max(backoff, options.retryAfterMs?.(err) ?? 0));
      if (clock.now() - started + wait > policy.maxElapsedMs) throw new RetriesExhaustedError(tries, err);
      options.onRetry?.(err, tries, wait);
      await clock.sleep(wait, options.signal);
    }
  }
}
