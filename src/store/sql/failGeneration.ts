import type { Queryable } from '../types.ts';
import { GENERATION_COLUMNS, toGeneration, type Generation } from '../generation.ts';

/**
 * → failed. With an `attempt`, only processing under that claim (a runner's report); without,
 * from pending or processing (the gateway's verdict, e.g. a dead-lettered message).
 */
export async function failGeneration(
  db: Queryable,
  id: string,
  attempt: number | null,
  code: string,
  message: string,
): Promise<Generation | null> {
  const rows = await db.query(
    `UPDATE generations SET
       status = 'failed', error_code = $3, error_message = $4, lease_expires_at = NULL,
       finished_at = now(), version = version + 1, updated_at = now()
     WHERE id = $1 AND ($2::int IS NULL AND status IN ('pending', 'processing')
                        OR status = 'processing' AND attempts = $2::int)
     RETURNING ${GENERATION_COLUMNS}`,
    [id, attempt, code, message],
  );
  return rows[0] ? toGeneration(rows[0]) : null;
}
