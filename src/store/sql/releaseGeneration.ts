import type { Queryable } from '../types.ts';

/**
 * Gives up the lease of claim `attempt` at once: its runner is stopping and handed the job back.
 * The generation stays `processing` (no transition, nothing a client sees, no version change), and
 * the next claim takes it without waiting for the lease to run out. The runner returns its message
 * to the queue, so the lease sweep need not dispatch it again.
 */
export async function releaseGeneration(db: Queryable, id: string, attempt: number): Promise<boolean> {
  const rows = await db.query(
    `UPDATE generations SET lease_expires_at = now(), redispatched_attempt = attempts, updated_at = now()
     WHERE id = $1 AND status = 'processing' AND attempts = $2
     RETURNING id`,
    [id, attempt],
  );
  return rows.length === 1;
}
