import type { StoredImage } from '../generation.ts';
import type { Queryable } from '../types.ts';

export interface ExpiredGeneration {
  id: string;
  images: StoredImage[];
}

/**
 * Generations to purge: hidden (DELETE) before `deletedBefore`, and, when `finishedBefore` is
 * given (retention), finished before it. At most `limit`, each half by its own index.
 */
export async function listExpiredGenerations(
  db: Queryable,
  q: { deletedBefore: Date; finishedBefore: Date | null; limit: number },
): Promise<ExpiredGeneration[]> {
  const rows = await db.query(
    `(SELECT id, images FROM generations WHERE deleted_at < $1 LIMIT $3)
     UNION
     (SELECT id, images FROM generations
      WHERE $2::timestamptz IS NOT NULL AND finished_at < $2 AND status IN ('completed', 'failed', 'canceled') LIMIT $3)
     LIMIT $3`,
    [q.deletedBefore, q.finishedBefore, q.limit],
  );
  return rows.map((r) => ({ id: String(r.id), images: (r.images as StoredImage[] | null) ?? [] }));
}
