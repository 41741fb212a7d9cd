import type { Queryable } from '../types.ts';
import { GENERATION_COLUMNS, toGeneration, type Generation } from '../generation.ts';

/**
 * Records a step of the claim `attempt` and extends its lease (the heartbeat). With a preview
 * (base64 PNG), the same statement keeps it as the generation's latest and marks its step on the
 * row, so the preview exists exactly when the step that made it was recorded.
 */
export async function reportProgress(
  db: Queryable,
  id: string,
  attempt: number,
  step: number,
  total: number,
  leaseSeconds: number,
  previewBase64: string | null = null,
): Promise<Generation | null> {
  const rows = await db.query(
    `WITH progressed AS (
       UPDATE generations SET
         step = $3, total_steps = $4, lease_expires_at = now() + make_interval(secs => $5),
         preview_step = CASE WHEN $6::text IS NULL THEN preview_step ELSE $3 END,
         version = version + 1, updated_at = now()
       WHERE id = $1 AND status = 'processing' AND attempts = $2
       RETURNING ${GENERATION_COLUMNS}
     ), previewed AS (
       INSERT INTO generation_previews AS p (generation_id, step, png, updated_at)
       SELECT id, $3, decode($6::text, 'base64'), now() FROM progressed WHERE $6::text IS NOT NULL
       ON CONFLICT (generation_id) DO UPDATE SET step = excluded.step, png = excluded.png, updated_at = excluded.updated_at
     )
     SELECT ${GENERATION_COLUMNS} FROM progressed`,
    [id, attempt, step, total, leaseSeconds, previewBase64],
  );
  return rows[0] ? toGeneration(rows[0]) : null;
}
