import type { Queryable } from '../db.ts';

/** Records that the broker confirmed these generations' messages. */
export async function markDispatched(db: Queryable, ids: string[]): Promise<void> {
  await db.query('UPDATE generations SET dispatched_at = now() WHERE id = ANY($1::uuid[]) AND dispatched_at IS NULL', [ids]);
}
