// The open event streams of every gateway instance (migration 003): closing one.
import type { Queryable } from '../types.ts';

export async function closeEventStream(db: Queryable, id: string): Promise<void> {
  await db.query('DELETE FROM event_streams WHERE id = $1', [id]);
}
