import type { Queryable } from '../types.ts';
import { GENERATION_COLUMNS, toGeneration, type Generation } from '../generation.ts';

/**
 * pending → processing, or re-claims a processing generation whose lease has expired (its runner
 * stopped heartbeating) or was given up (releaseGeneration). Concurrent claims serialize on the
 * row; exactly one gets it.
 */
export async function claimGeneration(
  db: Queryable,
  id: string,
  runnerId: string,
  leaseSeconds: number,
): Promise<Generation | null> {
  const rows = await db.query(
    `UPDATE generations SET
       status = 'processing', attempts = attempts + 1, runner_id = $2, step = 0,
       lease_expires_at = now() + make_interval(secs => $3), started_at = coalesce(started_at, now()),
       version = version + 1, updated_at = now()
     WHERE id = $1 AND (status = 'pending' OR (status = 'processing' AND lease_expires_at <= now()))
     RETURNING ${GENERATION_COLUMNS}`,
    [id, runnerId, leaseSeconds],
  );
  return rows[0] ? toGeneration(rows[0]) : null;
}
