import type { Queryable } from '../types.ts';
import { GENERATION_COLUMNS, toGeneration, type Generation } from '../generation.ts';

/** Up to this many pending generations ahead are counted exactly; beyond, submission order estimates. */
export const QUEUE_POSITION_EXACT = 100;

/**
 * A generation with its queue position while pending; scoped to an owner when `apiKeyId` is
 * given; deleted ones (DELETE /v1/generations/{id}) are gone. The position costs a bounded read however deep the queue is.
 */
export async function getGeneration(db: Queryable, id: string, apiKeyId?: string): Promise<Generation | null> {
  const rows = await db.query(
    `SELECT ${GENERATION_COLUMNS},
       CASE WHEN g.status = 'pending' THEN (
         SELECT CASE WHEN ahead.n < ${QUEUE_POSITION_EXACT} THEN ahead.n
                     ELSE greatest(ahead.n, g.seq - (SELECT min(seq) FROM generations WHERE status = 'pending')) END
         FROM (SELECT count(*) AS n FROM (
                 SELECT 1 FROM generations p WHERE p.status = 'pending' AND p.seq < g.seq
                 LIMIT ${QUEUE_POSITION_EXACT}) capped) ahead)
       END AS queue_position
     FROM generations g
     WHERE g.id = $1 AND ($2::uuid IS NULL OR g.api_key_id = $2::uuid) AND g.deleted_at IS NULL`,
    [id, apiKeyId ?? null],
  );
  return rows[0] ? toGeneration(rows[0]) : null;
}
