// The shared token buckets of the rate limits (migration 004): dropping idle ones.
import type { Queryable } from '../types.ts';

/** Buckets unused for an hour are full again (every policy's window is at most that): their rows can go. */
export async function deleteIdleRateBuckets(db: Queryable): Promise<void> {
  await db.query(`DELETE FROM rate_buckets WHERE refreshed_at < now() - interval '1 hour'`);
}
