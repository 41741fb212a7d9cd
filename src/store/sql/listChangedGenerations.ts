import type { Queryable } from '../types.ts';
import { GENERATION_COLUMNS, toGeneration, type Generation } from '../generation.ts';

/**
 * An owner's generations that changed after `since`, oldest change first: unfinished ones updated
 * since, and those finished since (unless deleted). Without `since`, the unfinished ones. Both halves read an index
 * of their own (migration 003).
 */
export async function listChangedGenerations(db: Queryable, apiKeyId: string, since: Date | null, limit: number): Promise<Generation[]> {
  const rows = await db.query(
    `(SELECT ${GENERATION_COLUMNS} FROM generations
      WHERE api_key_id = $1 AND status IN ('pending', 'processing') AND ($2::timestamptz IS NULL OR updated_at > $2))
     UNION ALL
     (SELECT ${GENERATION_COLUMNS} FROM generations
      WHERE api_key_id = $1 AND $2::timestamptz IS NOT NULL AND finished_at > $2 AND deleted_at IS NULL)
     ORDER BY updated_at, seq LIMIT $3`,
    [apiKeyId, since, limit],
  );
  return rows.map(toGeneration);
}
