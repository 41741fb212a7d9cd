// Rate limits: token buckets per key (submits; other requests) and per client address (requests
// without a valid key), in PostgreSQL so every gateway instance spends from the same buckets
// (docs/architecture.md, decision 9). An instance takes a few tokens at a time (a tenth of the bucket)
// and spends them over the next second, so a bucket's row is written once per few requests, not
// once per request, and never more than the bucket holds: spread over many instances a client is
// limited a little early, never late. A refused bucket is remembered until it refills, so a client
// that keeps knocking costs no database work. Answers carry the IETF RateLimit-Policy / RateLimit
// fields (draft-ietf-httpapi-ratelimit-headers).
import { isIP } from 'node:net';
import type { MiddlewareHandler } from 'hono';
import { AppError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { deleteIdleRateBuckets } from '../store/sql/deleteIdleRateBuckets.ts';
import { takeRateTokens } from '../store/sql/takeRateTokens.ts';
import type { AuthEnv } from './auth.ts';
import type { Queryable } from '../store/types.ts';

export interface RatePolicy {
  /** Its name in the RateLimit fields. */
  name: string;
  /** Tokens the bucket holds: the burst. */
  capacity: number;
  /** Seconds in which it refills from empty. */
  windowSeconds: number;
}

export interface RateDecision {
  allowed: boolean;
  policy: RatePolicy;
  /** Whole tokens left (approximate across instances). */
  remaining: number;
  /** Seconds until the bucket is full again. */
  resetSeconds: number;
  /** When refused: seconds until a token is there. */
  retryAfterSeconds: number;
}

interface Local {
  /** Tokens this instance took and has not spent; valid until `until`. */
  tokens: number;
  until: number;
  /** What the shared bucket had left at the last take. */
  shared: number;
  /** Refused until then. */
  deniedUntil: number;
  taking: Promise<void> | null;
}

/** How long tokens taken from the shared bucket may be spent here. */
const SPEND_WITHIN_MS = 1000;

export interface RateLimiter {
  take(bucket: string, policy: RatePolicy): Promise<RateDecision>;
  stop(): void;
}

export function startRateLimiter(o: { db: Queryable; log: Logger; now?: () => number }): RateLimiter {
  const now = o.now ?? Date.now;
  const buckets = new Map<string, Local>();
  const perSecond = (p: RatePolicy) => p.capacity / p.windowSeconds;
  const decision = (p: RatePolicy, allowed: boolean, left: number): RateDecision => ({
    allowed,
    policy: p,
    remaining: Math.max(0, Math.floor(left)),
    resetSeconds: Math.ceil(Math.max(0, p.capacity - left) / perSecond(p)),
    retryAfterSeconds: allowed ? 0 : Math.max(1, Math.ceil((1 - left) / perSecond(p))),
  });

  // Idle buckets are full: forget them here, and their rows in the database.
  const sweep = setInterval(() => {
    const t = now();
    for (const [key, b] of buckets) if (b.until < t && b.deniedUntil < t && !b.taking) buckets.delete(key);
    deleteIdleRateBuckets(o.db).catch((err) => o.log.debug('could not delete idle rate buckets', { err }));
  }, 60_000);
  sweep.unref();

  /** A refusal this instance knows of without asking the database, or null. */
  const known = (bucket: string, p: RatePolicy) => {
    const b = buckets.get(bucket);
    return b && b.deniedUntil > now() ? decision(p, false, b.shared) : null;
  };

  return {
    async take(bucket, p) {
      for (;;) {
        const refused = known(bucket, p);
        if (refused) return refused;
        let b = buckets.get(bucket);
        if (!b) buckets.set(bucket, (b = { tokens: 0, until: 0, shared: p.capacity, deniedUntil: 0, taking: null }));
        if (b.tokens >= 1 && b.until > now()) {
          b.tokens -= 1;
          return decision(p, true, b.tokens + b.shared);
        }
        // One take from the database at a time per bucket; the others wait for it and look again.
        if (!b.taking) {
          const local = b;
          local.taking = (async () => {
            try {
              const want = Math.max(1, Math.ceil(p.capacity / 10));
              const taken = await takeRateTokens(o.db, bucket, p.capacity, perSecond(p), want);
              local.tokens = taken.granted;
              local.until = now() + SPEND_WITHIN_MS;
              local.shared = taken.left;
              if (taken.granted === 0) local.deniedUntil = now() + decision(p, false, taken.left).retryAfterSeconds * 1000;
            } finally {
              local.taking = null;
            }
          })();
        }
        await b.taking;
      }
    },
    stop: () => clearInterval(sweep),
  };
}

/**
 * Limits of a key's requests, after authentication: submits from the `submit` bucket, anything
 * else from `request`. Every answer carries its bucket's fields.
 */
export function keyRateLimits(
  limiter: RateLimiter,
  policies: { submit: RatePolicy | null; request: RatePolicy | null },
): MiddlewareHandler<AuthEnv> {
  return async (c, next) => {
    const submit = c.req.method === 'POST' && (c.req.path === '/v1/generations' || c.req.path === '/generate');
    const policy = submit ? policies.submit : policies.request;
    if (!policy) return next();
    const d = await limiter.take(`${policy.name}:${c.get('principal').apiKeyId}`, policy);
    if (!d.allowed) throw rateLimited(d, submit ? 'submits' : 'requests');
    for (const [name, value] of Object.entries(rateLimitHeaders(d))) c.header(name, value);
    return next();
  };
}

/** A refusal as a 429 problem, with the fields that say when to come back. */
export function rateLimited(d: RateDecision, what: string): AppError {
  return new AppError(
    429,
    'rate_limited',
    `Too many ${what}: at most ${d.policy.capacity} per ${d.policy.windowSeconds} s; retry in ${d.retryAfterSeconds} s.`,
    { limit: d.policy.capacity, window_seconds: d.policy.windowSeconds, retry_after_s: d.retryAfterSeconds },
    { ...rateLimitHeaders(d), 'Retry-After': String(d.retryAfterSeconds) },
  );
}

export function rateLimitHeaders(d: RateDecision): Record<string, string> {
  return {
    'RateLimit-Policy': `"${d.policy.name}";q=${d.policy.capacity};w=${d.policy.windowSeconds}`,
    RateLimit: `"${d.policy.name}";r=${d.remaining};t=${d.resetSeconds}`,
  };
}

/** The bucket of a client address: IPv6 by /64 (what one host is usually given), IPv4 whole. */
export function addressBucket(address: string): string {
  const plain = address.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, '');
  if (isIP(plain) !== 6) return `address:${plain}`;
  const [head, tail = ''] = plain.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = plain.includes('::') ? [...left, ...Array(8 - left.length - right.length).fill('0'), ...right] : left;
  return `address:${groups.slice(0, 4).map((g) => parseInt(g || '0', 16).toString(16)).join(':')}::/64`;
}
