// The webhook outbox (migration 005): sending the message of a recorded attempt again.
import type { Queryable } from '../types.ts';

/**
 * Puts the message of attempt `deliveryId` (of generation `generationId`) back in the outbox, due
 * now, with its webhook-id; when it is still there (being retried), makes it due now. Returns the
 * webhook-id, or null when there is no such attempt of that generation.
 */
export async function redeliverWebhookMessage(db: Queryable, generationId: string, deliveryId: string): Promise<string | null> {
  const rows = await db.query(
    `WITH d AS (SELECT message_id, generation_id, event FROM webhook_deliveries WHERE id = $1 AND generation_id = $2),
     inserted AS (
       INSERT INTO webhook_outbox (id, generation_id, event) SELECT message_id, generation_id, event FROM d
       ON CONFLICT DO NOTHING RETURNING id),
     due AS (
       UPDATE webhook_outbox o SET next_attempt_at = clock_timestamp() FROM d
       WHERE o.id = d.message_id AND NOT EXISTS (SELECT 1 FROM inserted) RETURNING o.id)
     SELECT message_id, (SELECT count(*) FROM inserted) + (SELECT count(*) FROM due) AS queued FROM d`,
    [deliveryId, generationId],
  );
  return rows[0] ? String(rows[0].message_id) : null;
}
