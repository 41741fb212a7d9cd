// The webhook outbox (migration 005): a message that will not be tried again.
import type { Queryable } from '../types.ts';

/** Refused, answered with a non-retryable status, out of retries, or no longer needed. */
export async function dropWebhookMessage(db: Queryable, id: string): Promise<void> {
  await db.query('DELETE FROM webhook_outbox WHERE id = $1', [id]);
}
