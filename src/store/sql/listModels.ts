import { toDate, type Queryable } from '../types.ts';
import type { StoredModel } from './upsertModel.ts';

/** The registered models, by name. */
export async function listModels(db: Queryable): Promise<StoredModel[]> {
  const rows = await db.query('SELECT name, hash, description, last_seen_at FROM models ORDER BY name LIMIT 100');
  return rows.map((r) => ({
    name: String(r.name),
    hash: String(r.hash),
    description: r.description as Record<string, unknown>,
    lastSeenAt: toDate(r.last_seen_at),
  }));
}
