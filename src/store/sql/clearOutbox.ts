// The dispatch outbox (see migration 001): entries whose message is confirmed.
import type { Queryable } from '../types.ts';

/** The broker confirmed these generations' messages (or they no longer need one). */
export async function clearOutbox(db: Queryable, ids: string[]): Promise<void> {
  await db.query('DELETE FROM dispatch_outbox WHERE generation_id = ANY($1::uuid[])', [ids]);
}
