import { denoisingSteps, type GenerationParams } from '../../core/request.ts';
import type { Queryable } from '../types.ts';
import { GENERATION_COLUMNS, toGeneration, type Generation } from '../generation.ts';

export interface NewGeneration {
  apiKeyId: string;
  /** The owner's cap on unfinished generations. */
  maxUnfinished: number;
  idempotencyKey: string | null;
  requestHash: string | null;
  params: GenerationParams;
}

/**
 * Inserts a pending generation and its outbox row, unless its owner already has `maxUnfinished`
 * unfinished ones or the idempotency key is taken; returns null in both cases (the caller tells
 * them apart). The cap reads committed counts without locking, so concurrent submits of one key
 * may pass it by at most their number.
 */
export async function insertGeneration(db: Queryable, g: NewGeneration): Promise<Generation | null> {
  const rows = await db.query(
    `WITH inserted AS (
       INSERT INTO generations (api_key_id, idempotency_key, request_hash, params, total_steps)
       SELECT $1, $3, $4, $5::text::jsonb, $6
       WHERE (SELECT coalesce(sum(unfinished), 0) FROM api_key_usage WHERE api_key_id = $1) < $2
       ON CONFLICT (api_key_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
       RETURNING ${GENERATION_COLUMNS}),
     outbox AS (
       INSERT INTO dispatch_outbox (generation_id) SELECT id FROM inserted)
     SELECT * FROM inserted`,
    [g.apiKeyId, g.maxUnfinished, g.idempotencyKey, g.requestHash, JSON.stringify(g.params), denoisingSteps(g.params)],
  );
  return rows[0] ? toGeneration(rows[0]) : null;
}
