// The webhook outbox (migration 005): taking due messages to deliver.
import { toDate, type Queryable } from '../types.ts';

export type WebhookEvent = 'start' | 'progress' | 'completed';

export interface WebhookMessage {
  /** The webhook-id. */
  id: string;
  generationId: string;
  event: WebhookEvent;
  /** This attempt's number, from 1. */
  attempt: number;
  revision: number;
  createdAt: Date;
}

/**
 * Leases up to `limit` due messages for `leaseSeconds`, oldest due first, counting the attempt.
 * Other instances skip them; a crashed instance's lease runs out and they are taken again.
 */
export async function leaseWebhookMessages(db: Queryable, limit: number, leaseSeconds: number): Promise<WebhookMessage[]> {
  const rows = await db.query(
    `UPDATE webhook_outbox o SET lease_until = clock_timestamp() + make_interval(secs => $2), attempts = o.attempts + 1
     WHERE o.id IN (
       SELECT id FROM webhook_outbox
       WHERE next_attempt_at <= clock_timestamp() AND (lease_until IS NULL OR lease_until < clock_timestamp())
       ORDER BY next_attempt_at LIMIT $1
       FOR UPDATE SKIP LOCKED)
     RETURNING o.id, o.generation_id, o.event, o.attempts, o.revision, o.created_at`,
    [limit, leaseSeconds],
  );
  return rows.map((r) => ({
    id: String(r.id),
    generationId: String(r.generation_id),
    event: r.event as WebhookEvent,
    attempt: Number(r.attempts),
    revision: Number(r.revision),
    createdAt: toDate(r.created_at),
  }));
}
