import type { Queryable } from '../types.ts';

/**
 * Removes these generations' rows and whatever else is kept per generation (dispatch and webhook
 * outbox rows, webhook attempts; previews go by their foreign key) in one statement, so none is
 * left behind; their images must be gone from storage first. Only finished or hidden rows,
 * whatever the caller passes. Returns how many rows went.
 */
export async function purgeGenerations(db: Queryable, ids: string[]): Promise<number> {
  const rows = await db.query(
    `WITH gone AS (
       DELETE FROM generations
       WHERE id = ANY($1::uuid[]) AND (deleted_at IS NOT NULL OR status IN ('completed', 'failed', 'canceled'))
       RETURNING id),
     outbox AS (DELETE FROM dispatch_outbox WHERE generation_id IN (SELECT id FROM gone)),
     webhook_messages AS (DELETE FROM webhook_outbox WHERE generation_id IN (SELECT id FROM gone)),
     webhook_attempts AS (DELETE FROM webhook_deliveries WHERE generation_id IN (SELECT id FROM gone))
     SELECT count(*) AS n FROM gone`,
    [ids],
  );
  return Number(rows[0]!.n);
}
