import type { Queryable } from '../types.ts';

/** Gives a sweep's lease back, so the next sweep (of any instance) need not wait for it to run out. */
export async function releaseSweepLease(db: Queryable, name: string): Promise<void> {
  await db.query(`UPDATE sweep_leases SET lease_until = '-infinity' WHERE name = $1`, [name]);
}
