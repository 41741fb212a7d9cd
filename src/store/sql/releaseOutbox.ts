// The dispatch outbox (see migration 001): entries given back after a failed publish.
import type { Queryable } from '../types.ts';

/** Gives leased entries back after a failed publish, so the next attempt need not wait out the lease. */
export async function releaseOutbox(db: Queryable, ids: string[]): Promise<void> {
  await db.query('UPDATE dispatch_outbox SET lease_until = NULL WHERE generation_id = ANY($1::uuid[])', [ids]);
}
