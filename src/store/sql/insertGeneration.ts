import type { GenerationParams } from '../../core/request.ts';
import type { Queryable } from '../db.ts';
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
 * Inserts a pending generation unless its owner already has `maxUnfinished` unfinished ones or
 * the idempotency key is taken; returns null in both cases (the caller tells them apart). The cap
 * is counted without locking, so concurrent submits of one key may pass it by their number.
 */
export async function insertGeneration(db: Queryable, g: NewGeneration): Promise<Generation | null> {
  const rows = await db.query(
    `WITH unfinished AS (
       SELECT count(*) AS n FROM (
         SELECT 1 FROM generations
         WHERE api_key_id = $1 AND status IN ('pending', 'processing')
         LIMIT $2) capped)
     INSERT INTO generations (api_key_id, idempotency_key, request_hash, params, total_steps)
     SELECT $1, $3, $4, $5::text::jsonb, $6 FROM unfinished WHERE n < $2
     ON CONFLICT (api_key_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
     RETURNING ${GENERATION_COLUMNS}`,
    [g.apiKeyId, g.maxUnfinished, g.idempotencyKey, g.requestHash, JSON.stringify(g.params), g.params.num_inference_steps],
  );
  return rows[0] ? toGeneration(rows[0]) : null;
}
