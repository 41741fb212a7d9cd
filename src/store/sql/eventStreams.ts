// The open event streams of every gateway instance (migration 003), for the per-key cap: one
// function per statement.
import type { Queryable } from '../types.ts';

/** Registers a stream of `apiKeyId` unless it holds `max` live ones; its id, or null when at the cap. */
export async function openEventStream(db: Queryable, apiKeyId: string, max: number, ttlSeconds: number): Promise<string | null> {
  const rows = await db.query(
    `INSERT INTO event_streams (api_key_id, expires_at)
     SELECT $1, now() + make_interval(secs => $3)
     WHERE (SELECT count(*) FROM event_streams WHERE api_key_id = $1 AND expires_at > now()) < $2
     RETURNING id`,
    [apiKeyId, max, ttlSeconds],
  );
  return rows[0] ? String(rows[0].id) : null;
}

/** Keeps this instance's streams registered for another `ttlSeconds`, and drops rows long run out. */
export async function renewEventStreams(db: Queryable, ids: string[], ttlSeconds: number): Promise<void> {
  await db.query(
    `WITH renewed AS (UPDATE event_streams SET expires_at = now() + make_interval(secs => $2) WHERE id = ANY($1::uuid[]))
     DELETE FROM event_streams WHERE expires_at < now() - interval '1 minute'`,
    [ids, ttlSeconds],
  );
}

export async function closeEventStream(db: Queryable, id: string): Promise<void> {
  await db.query('DELETE FROM event_streams WHERE id = $1', [id]);
}
