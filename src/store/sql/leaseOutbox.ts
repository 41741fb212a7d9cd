// The dispatch outbox (see migration 001): taking entries to publish.
import type { GenerationParams } from '../../core/request.ts';
import type { GenerationStatus } from '../../core/status.ts';
import type { Queryable } from '../types.ts';

export interface OutboxEntry {
  id: string;
  params: GenerationParams;
  /** Only pending generations are published; the others are just cleared. */
  status: GenerationStatus;
  /** The submit's trace context: the publish joins that trace. */
  traceparent: string | null;
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
     SELECT g.id, g.params, g.status, g.traceparent FROM leased l JOIN generations g ON g.id = l.generation_id ORDER BY g.seq`,
    [limit, leaseSeconds, minAgeSeconds],
  );
  return rows.map((r) => ({ id: String(r.id), params: r.params as GenerationParams, status: r.status as GenerationStatus, traceparent: (r.traceparent as string | null) ?? null }));
}
