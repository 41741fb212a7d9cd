import type { GenerationParams } from '../../core/request.ts';
import type { Queryable } from '../db.ts';

export interface Undispatched {
  id: string;
  params: GenerationParams;
}

/**
 * Takes up to `limit` pending generations whose message was never confirmed, oldest first, and
 * leases them to this dispatcher for `leaseSeconds` so other gateway instances skip them. A
 * dispatcher that dies mid-batch lets its lease lapse; the batch is then taken again.
 */
export async function leaseForDispatch(db: Queryable, limit: number, leaseSeconds: number): Promise<Undispatched[]> {
  const rows = await db.query(
    `UPDATE generations SET dispatch_lease_until = now() + make_interval(secs => $2)
     WHERE id IN (
       SELECT id FROM generations
       WHERE status = 'pending' AND dispatched_at IS NULL
         AND (dispatch_lease_until IS NULL OR dispatch_lease_until < now())
       ORDER BY seq LIMIT $1
       FOR UPDATE SKIP LOCKED)
     RETURNING id, params, seq`,
    [limit, leaseSeconds],
  );
  return rows
    .sort((a, b) => Number(a.seq) - Number(b.seq))
    .map((r) => ({ id: String(r.id), params: r.params as GenerationParams }));
}
