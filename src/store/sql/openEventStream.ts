// The open event streams of every gateway instance (migration 003), for the per-key cap: opening one.
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
