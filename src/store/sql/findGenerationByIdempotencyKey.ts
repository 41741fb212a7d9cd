import type { Queryable } from '../types.ts';
import { GENERATION_COLUMNS, toGeneration, type Generation } from '../generation.ts';

export async function findGenerationByIdempotencyKey(
  db: Queryable,
  apiKeyId: string,
  idempotencyKey: string,
): Promise<Generation | null> {
  const rows = await db.query(
    `SELECT ${GENERATION_COLUMNS} FROM generations WHERE api_key_id = $1 AND idempotency_key = $2`,
    [apiKeyId, idempotencyKey],
  );
  return rows[0] ? toGeneration(rows[0]) : null;
}
