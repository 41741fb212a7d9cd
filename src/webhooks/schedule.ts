// When a failed webhook attempt is tried again: exponential backoff with full jitter. Before retry
// n (after attempt n) the wait is uniform in [0, min(base × 2^(n-1), base × CAP_FACTOR)); with the
// default base of 5 s that is at most 5 s, 10 s, 20 s, … up to 4 h per wait. A message is retried
// until it is `windowMs` old (default 24 h), so about 20 attempts in all; then it is given up.
// 429 and 503 answers' Retry-After is waited at least, up to the cap.

export const CAP_FACTOR = 2880;

/** Milliseconds to wait before retrying after attempt `attempt` (from 1). */
export function retryDelayMs(attempt: number, baseMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(baseMs * 2 ** Math.min(attempt - 1, 40), baseMs * CAP_FACTOR);
  return Math.floor(random() * ceiling);
}

/** Retry-After (seconds or an HTTP date) in milliseconds from `now`, within [0, the cap]; null when absent or unreadable. */
export function retryAfterMs(header: string | undefined, baseMs: number, now: number): number | null {
  if (!header) return null;
  const trimmed = header.trim();
  const ms = /^\d{1,10}$/.test(trimmed) ? Number(trimmed) * 1000 : Date.parse(trimmed) - now;
  if (!Number.isFinite(ms)) return null;
  return Math.min(Math.max(ms, 0), baseMs * CAP_FACTOR);
}
