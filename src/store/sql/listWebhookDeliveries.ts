// The attempts at a generation's webhook messages (migration 005), for its owner.
import { toDate, type Queryable } from '../types.ts';
import type { WebhookAttempt } from './insertWebhookDelivery.ts';
import type { WebhookEvent } from './leaseWebhookMessages.ts';

/** An attempt as its generation's owner sees it: the record, by its own id. */
export interface WebhookDelivery extends Omit<WebhookAttempt, 'generationId'> {
  id: string;
}

/** A generation's attempts, newest first, at most `limit`, older than the attempt `before` (the cursor) when given. */
export async function listWebhookDeliveries(db: Queryable, generationId: string, limit: number, before?: string): Promise<WebhookDelivery[]> {
  const rows = await db.query(
    `SELECT id, message_id, event, url, attempt, attempted_at, status_code, duration_ms, error, will_retry
     FROM webhook_deliveries d
     WHERE generation_id = $1
       AND ($3::uuid IS NULL OR (attempted_at, id) < (SELECT attempted_at, id FROM webhook_deliveries WHERE id = $3::uuid AND generation_id = $1))
     ORDER BY attempted_at DESC, id DESC
     LIMIT $2`,
    [generationId, limit, before ?? null],
  );
  return rows.map((r) => ({
    id: String(r.id),
    messageId: String(r.message_id),
    event: r.event as WebhookEvent,
    url: String(r.url),
    attempt: Number(r.attempt),
    attemptedAt: toDate(r.attempted_at),
    statusCode: r.status_code == null ? null : Number(r.status_code),
    durationMs: Number(r.duration_ms),
    error: (r.error as string | null) ?? null,
    willRetry: Boolean(r.will_retry),
  }));
}
