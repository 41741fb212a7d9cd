import type { Queryable } from '../types.ts';
import { GENERATION_COLUMNS, toGeneration, type Generation, type Ran, type StoredImage } from '../generation.ts';

/** processing → completed, for the claim `attempt` only. */
export async function completeGeneration(
  db: Queryable,
  id: string,
  attempt: number,
  images: StoredImage[],
  ran: Ran | null = null,
  timings: Record<string, number> | null = null,
): Promise<Generation | null> {
  const rows = await db.query(
    `UPDATE generations SET
       status = 'completed', images = $3::text::jsonb, step = total_steps, lease_expires_at = NULL,
       finished_at = now(), version = version + 1, updated_at = now(),
       ran = $4::text::jsonb, timings = $5::text::jsonb
     WHERE id = $1 AND status = 'processing' AND attempts = $2
     RETURNING ${GENERATION_COLUMNS}`,
    [id, attempt, JSON.stringify(images), ran && JSON.stringify(ran), timings && JSON.stringify(timings)],
  );
  return rows[0] ? toGeneration(rows[0]) : null;
}
