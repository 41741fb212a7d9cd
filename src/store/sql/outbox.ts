// The dispatch outbox (see migration 001): one function per statement.
import type { GenerationParams } from '../../core/request.ts';
import type { GenerationStatus } from '../../core/status.ts';
import type { Queryable } from '../types.ts';

export interface OutboxEntry {
  id: string;
  params: GenerationParams;
  /** Only pending generations are published; the others are just cleared. */
  status: GenerationStatus;
}

/**
 * Leases up to `limit` outbox entries at least `minAgeSeconds` old, oldest first, for
 * `leaseSeconds`, so other gateway instances skip them. A dispatcher that dies mid-batch lets its
 * lease lapse; the entries are then taken again.
 */
export async function leaseOutbox(
  db: Queryable,
  limit: number,
  leaseSeconds: number,
  minAgeSeconds: number,
): Promise<OutboxEntry[]> {
  const rows = await db.query(
    `WITH leased AS (
       UPDATE dispatch_outbox SET lease_until = now() + make_interval(secs => $2)
       WHERE generation_id IN (
         SELECT generation_id FROM dispatch_outbox
         WHERE (lease_until IS NULL OR lease_until < now()) AND created_at <= now() - make_interval(secs => $3)
         ORDER BY created_at LIMIT $1
         FOR UPDATE SKIP LOCKED)
       RETURNING generation_id)
     SELECT g.id, g.params, g.status FROM leased l JOIN generations g ON g.id = l.generation_id ORDER BY g.seq`,
    [limit, leaseSeconds, minAgeSeconds],
  );
  return rows.map((r) => ({ id: String(r.id), params: r.params as GenerationParams, status: r.status as GenerationStatus }));
}

/** The broker confirmed these generations' messages (or they no longer need one). */
export async function clearOutbox(db: Queryable, ids: string[]): Promise<void> {
  await db.query('DELETE FROM dispatch_outbox WHERE generation_id = ANY($1::uuid[])', [ids]);
}

/** Gives leased entries back after a failed publish, so the next attempt need not wait out the lease. */
export async function releaseOutbox(db: Queryable, ids: string[]): Promise<void> {
  await db.query('UPDATE dispatch_outbox SET lease_until = NULL WHERE generation_id = ANY($1::uuid[])', [ids]);
}

export async function countOutbox(db: Queryable): Promise<number> {
  const rows = await db.query('SELECT count(*) AS n FROM dispatch_outbox');
  return Number(rows[0]?.n ?? 0);
}
