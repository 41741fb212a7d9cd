import type { Queryable } from '../types.ts';
import { GENERATION_COLUMNS, toGeneration, type Generation } from '../generation.ts';

/** Records a step of the claim `attempt` and extends its lease (the heartbeat). */
export async function reportProgress(
  db: Queryable,
  id: string,
  attempt: number,
  step: number,
  total: number,
  leaseSeconds: number,
): Promise<Generation | null> {
  const rows = await db.query(
    `UPDATE generations SET
       step = $3, total_steps = $4, lease_expires_at = now() + make_interval(secs => $5),
       version = version + 1, updated_at = now()
     WHERE id = $1 AND status = 'processing' AND attempts = $2
     RETURNING ${GENERATION_COLUMNS}`,
    [id, attempt, step, total, leaseSeconds],
  );
  return rows[0] ? toGeneration(rows[0]) : null;
}
