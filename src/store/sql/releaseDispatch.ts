import type { Queryable } from '../db.ts';

/** Gives leased generations back after a failed publish, so the next attempt need not wait out the lease. */
export async function releaseDispatch(db: Queryable, ids: string[]): Promise<void> {
  await db.query('UPDATE generations SET dispatch_lease_until = NULL WHERE id = ANY($1::uuid[]) AND dispatched_at IS NULL', [ids]);
}
