// The record of one webhook attempt (migration 005).
import type { Queryable } from '../types.ts';
import type { WebhookEvent } from './leaseWebhookMessages.ts';

export interface WebhookAttempt {
  messageId: string;
  generationId: string;
  event: WebhookEvent;
  url: string;
  attempt: number;
  attemptedAt: Date;
  statusCode: number | null;
  durationMs: number;
  error: string | null;
  willRetry: boolean;
}

export async function insertWebhookDelivery(db: Queryable, a: WebhookAttempt): Promise<void> {
  await db.query(
    `INSERT INTO webhook_deliveries (message_id, generation_id, event, url, attempt, attempted_at, status_code, duration_ms, error, will_retry)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
    [a.messageId, a.generationId, a.event, a.url, a.attempt, a.attemptedAt.toISOString(), a.statusCode, a.durationMs, a.error, a.willRetry],
  );
}
