// The webhook outbox (migration 005): a message delivered.
import type { Queryable } from '../types.ts';

/**
 * Removes a delivered message, unless a newer step refreshed it (a progress message whose
 * revision moved on while it was in flight): that one becomes a new message, due now.
 */
export async function settleWebhookMessage(db: Queryable, id: string, revision: number): Promise<void> {
  await db.query(
    `WITH gone AS (DELETE FROM webhook_outbox WHERE id = $1 AND revision = $2 RETURNING id)
     UPDATE webhook_outbox SET id = 'msg_' || gen_random_uuid(), attempts = 0, lease_until = NULL,
       next_attempt_at = clock_timestamp(), created_at = clock_timestamp()
     WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM gone)`,
    [id, revision],
  );
}
