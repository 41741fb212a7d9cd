// Statements only tests run: the product never needs to count its outbox, so they stay out of src/store.
import type { Queryable } from '../../src/store/types.ts';

/** Outbox rows left, whatever their lease: 0 once every message is confirmed. */
export async function countOutbox(db: Queryable): Promise<number> {
  const rows = await db.query('SELECT count(*) AS n FROM dispatch_outbox');
  return Number(rows[0]?.n ?? 0);
}
