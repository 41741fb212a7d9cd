import type { Queryable } from '../types.ts';

/**
 * For the in-process queue, which lived and died with the process before this one: every
 * unfinished generation goes back in the dispatch outbox, and processing ones lose their lease
 * (their runner ran in that process). Returns how many. One embedded process per database.
 */
export async function redispatchUnfinished(db: Queryable): Promise<number> {
  const rows = await db.query(
    `WITH released AS (
       UPDATE generations SET lease_expires_at = now(), redispatched_attempt = attempts
       WHERE status = 'processing'
       RETURNING id),
     unfinished AS (
       SELECT id FROM generations WHERE status = 'pending' UNION ALL SELECT id FROM released)
     INSERT INTO dispatch_outbox (generation_id) SELECT id FROM unfinished
     ON CONFLICT (generation_id) DO NOTHING
     RETURNING generation_id`,
  );
  return rows.length;
}
