import type { Queryable } from '../types.ts';
import { GENERATION_COLUMNS, toGeneration, type Generation } from '../generation.ts';

/** pending | processing → canceled, for its owner. A runner learns of it at its next progress report. */
export async function cancelGeneration(db: Queryable, id: string, apiKeyId: string): Promise<Generation | null> {
  const rows = await db.query(
    `UPDATE generations SET
       status = 'canceled', lease_expires_at = NULL, finished_at = now(), version = version + 1, updated_at = now()
     WHERE id = $1 AND api_key_id = $2 AND status IN ('pending', 'processing')
     RETURNING ${GENERATION_COLUMNS}`,
    [id, apiKeyId],
  );
  return rows[0] ? toGeneration(rows[0]) : null;
}
