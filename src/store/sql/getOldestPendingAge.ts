// How long the oldest pending generation has waited, for /metrics: the alert that says the queue
// is not draining (no runner, or too few) reads it.
import type { Queryable } from '../types.ts';

/**
 * Seconds since the oldest pending generation was submitted, on the database's clock; 0 when none
 * waits. The oldest by `seq` (submit order), so the generations_pending index answers it.
 */
export async function getOldestPendingAge(db: Queryable): Promise<number> {
  const rows = await db.query(
    `SELECT extract(epoch FROM now() - created_at) AS age FROM generations WHERE status = 'pending' ORDER BY seq LIMIT 1`,
  );
  return rows[0] ? Math.max(0, Number(rows[0].age)) : 0;
}
