// The open event streams of every gateway instance (migration 003): keeping this instance's alive.
import type { Queryable } from '../types.ts';

/** Keeps this instance's streams registered for another `ttlSeconds`, and drops rows long run out. */
export async function renewEventStreams(db: Queryable, ids: string[], ttlSeconds: number): Promise<void> {
  await db.query(
    `WITH renewed AS (UPDATE event_streams SET expires_at = now() + make_interval(secs => $2) WHERE id = ANY($1::uuid[]))
     DELETE FROM event_streams WHERE expires_at < now() - interval '1 minute'`,
    [ids, ttlSeconds],
  );
}
