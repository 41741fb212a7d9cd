import type { GenerationStatus } from '../../core/status.ts';
import type { StoredImage } from '../generation.ts';
import type { Queryable } from '../types.ts';

export interface DeleteOutcome {
  /** missing: no such generation of this owner; unfinished: pending or processing, so kept; deleted: hidden now or before. */
  outcome: 'missing' | 'unfinished' | 'deleted';
  status?: GenerationStatus;
  /** The images to remove from storage (again, when hidden before: a crash may have left them). */
  images: StoredImage[];
}

/**
 * Hides a finished generation of its owner (deleted_at) and forgets its Idempotency-Key, so the
 * key may be used again. One statement: the row is locked while it is judged, so a cancel or
 * completion in between is seen, never overwritten.
 */
export async function deleteGeneration(db: Queryable, id: string, apiKeyId: string): Promise<DeleteOutcome> {
  const rows = await db.query(
    `WITH target AS (
       SELECT id, status, deleted_at, images FROM generations WHERE id = $1 AND api_key_id = $2 FOR UPDATE),
     hidden AS (
       UPDATE generations g SET deleted_at = now(), idempotency_key = NULL
       FROM target
       WHERE g.id = target.id AND target.deleted_at IS NULL AND target.status IN ('completed', 'failed', 'canceled')
       RETURNING g.id)
     SELECT status, images, deleted_at IS NOT NULL OR EXISTS (SELECT 1 FROM hidden) AS deleted FROM target`,
    [id, apiKeyId],
  );
  const row = rows[0];
  if (!row) return { outcome: 'missing', images: [] };
  const status = row.status as GenerationStatus;
  if (!row.deleted) return { outcome: 'unfinished', status, images: [] };
  return { outcome: 'deleted', status, images: (row.images as StoredImage[] | null) ?? [] };
}
