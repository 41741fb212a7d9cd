// The webhook outbox (migration 005): a failed attempt to be tried again.
import type { Queryable } from '../types.ts';

/** Gives up the lease; the message is due again at `at`. */
export async function rescheduleWebhookMessage(db: Queryable, id: string, at: Date): Promise<void> {
  await db.query('UPDATE webhook_outbox SET next_attempt_at = $2, lease_until = NULL WHERE id = $1', [id, at.toISOString()]);
}
