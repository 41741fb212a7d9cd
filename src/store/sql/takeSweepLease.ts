import type { Queryable } from '../types.ts';

/** The lease of a sweep (migration 007) for `seconds`, unless another holder's is current; true when taken. */
export async function takeSweepLease(db: Queryable, name: string, seconds: number): Promise<boolean> {
  const rows = await db.query(
    `UPDATE sweep_leases SET lease_until = now() + make_interval(secs => $2)
     WHERE name = $1 AND lease_until < now() RETURNING name`,
    [name, seconds],
  );
  return rows.length > 0;
}
