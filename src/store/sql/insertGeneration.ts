import { denoisingSteps, generationCost, type GenerationParams } from '../../core/request.ts';
import type { Queryable } from '../types.ts';
import { GENERATION_COLUMNS, toGeneration, type Generation } from '../generation.ts';

export interface NewGeneration {
  apiKeyId: string;
  /** The owner's cap on unfinished generations. */
  maxUnfinished: number;
  /** The owner's cap on their cost, this one's included. */
  maxUnfinishedCost: number;
  idempotencyKey: string | null;
  requestHash: string | null;
  params: GenerationParams;
  /** Where its events are POSTed and which (src/webhooks/); absent: none. */
  webhook?: { url: string; events: string[] } | undefined;
  /** The submit's trace context (src/telemetry/), for the work that follows to join; null without traces. */
  traceparent?: string | null;
}

/**
 * Inserts a pending generation and its outbox row, unless its owner already has `maxUnfinished`
 * unfinished ones, their cost with this one's would pass `maxUnfinishedCost`, or the idempotency
 * key is taken; returns null in these cases (the caller tells them apart). The caps read
 * committed counts without locking, so concurrent submits of one key may pass them by at most
 * their number.
 */
export async function insertGeneration(db: Queryable, g: NewGeneration): Promise<Generation | null> {
  const rows = await db.query(
    `WITH inserted AS (
       INSERT INTO generations (api_key_id, idempotency_key, request_hash, params, total_steps, cost, webhook_url, webhook_events, traceparent)
       SELECT $1, $3, $4, $5::text::jsonb, $6, $7::int, $9::text, $10::text[], $11::text
       WHERE (SELECT coalesce(sum(unfinished), 0) < $2 AND coalesce(sum(unfinished_cost), 0) + $7::int <= $8::bigint
              FROM api_key_usage WHERE api_key_id = $1)
       ON CONFLICT (api_key_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
       RETURNING ${GENERATION_COLUMNS}),
     outbox AS (
       INSERT INTO dispatch_outbox (generation_id) SELECT id FROM inserted)
     SELECT * FROM inserted`,
    [g.apiKeyId, g.maxUnfinished, g.idempotencyKey, g.requestHash, JSON.stringify(g.params), denoisingSteps(g.params), generationCost(g.params), g.maxUnfinishedCost,
     g.webhook?.url ?? null, g.webhook?.events ?? null, g.traceparent ?? null],
  );
  return rows[0] ? toGeneration(rows[0]) : null;
}
