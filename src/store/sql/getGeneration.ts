import type { Queryable } from '../db.ts';
import { GENERATION_COLUMNS, toGeneration, type Generation } from '../generation.ts';

/** Queue positions are counted exactly up to this many jobs ahead, so a deep queue costs a bounded read. */
export const QUEUE_POSITION_CAP = 1000;

/** A generation with its queue position while pending; scoped to an owner when `apiKeyId` is given. */
export async function getGeneration(db: Queryable, id: string, apiKeyId?: string): Promise<Generation | null> {
  const rows = await db.query(
    `SELECT ${GENERATION_COLUMNS},
       CASE WHEN g.status = 'pending' THEN (
         SELECT count(*) FROM (
           SELECT 1 FROM generations p WHERE p.status = 'pending' AND p.seq < g.seq LIMIT ${QUEUE_POSITION_CAP}) ahead)
       END AS queue_position
     FROM generations g
     WHERE g.id = $1 AND ($2::uuid IS NULL OR g.api_key_id = $2::uuid)`,
    [id, apiKeyId ?? null],
  );
  return rows[0] ? toGeneration(rows[0]) : null;
}
