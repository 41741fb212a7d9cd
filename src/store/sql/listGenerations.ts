import type { GenerationStatus } from '../../core/status.ts';
import type { Queryable } from '../types.ts';
import { GENERATION_COLUMNS, toGeneration, type Generation } from '../generation.ts';

export interface ListQuery {
  apiKeyId: string;
  status?: GenerationStatus | undefined;
  limit: number;
  /** Only generations submitted before this sequence number (the cursor). */
  beforeSeq?: number | undefined;
}

/** An owner's generations (not the deleted ones), newest first, keyset-paginated on `seq`. */
export async function listGenerations(db: Queryable, q: ListQuery): Promise<Generation[]> {
  const rows = await db.query(
    `SELECT ${GENERATION_COLUMNS} FROM generations
     WHERE api_key_id = $1 AND deleted_at IS NULL AND ($2::text IS NULL OR status = $2) AND ($3::bigint IS NULL OR seq < $3)
     ORDER BY seq DESC LIMIT $4`,
    [q.apiKeyId, q.status ?? null, q.beforeSeq ?? null, q.limit],
  );
  return rows.map(toGeneration);
}
