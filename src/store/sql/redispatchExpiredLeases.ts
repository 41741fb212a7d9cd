import type { Queryable } from '../types.ts';

/**
 * Puts every processing generation whose lease has run out back in the dispatch outbox, once per
 * claim: its runner stopped (killed, partitioned) and the message it held may be gone (a runner
 * that met the job while that lease was live dropped it). Returns the ids. Concurrent sweeps of
 * several gateways serialize on the rows; each claim is dispatched again once.
 */
export async function redispatchExpiredLeases(db: Queryable, limit: number): Promise<string[]> {
  const rows = await db.query(
    `WITH expired AS (
       UPDATE generations SET redispatched_attempt = attempts
       WHERE id IN (
         SELECT id FROM generations
         WHERE status = 'processing' AND lease_expires_at < now() AND redispatched_attempt IS DISTINCT FROM attempts
         ORDER BY seq LIMIT $1
         FOR UPDATE SKIP LOCKED)
       RETURNING id)
     INSERT INTO dispatch_outbox (generation_id) SELECT id FROM expired
     ON CONFLICT (generation_id) DO NOTHING
     RETURNING generation_id`,
    [limit],
  );
  return rows.map((r) => String(r.generation_id));
}
