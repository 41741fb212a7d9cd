import type { Queryable } from '../types.ts';

/** A runner's model as it registered it (src/core/internal-api.ts modelDescriptionSchema). */
export interface StoredModel {
  name: string;
  hash: string;
  description: Record<string, unknown>;
  lastSeenAt: Date;
}

/** A runner says it serves this model: the latest description wins, and when it was last said. */
export async function upsertModel(db: Queryable, name: string, hash: string, description: Record<string, unknown>): Promise<void> {
  await db.query(
    `INSERT INTO models (name, hash, description, last_seen_at) VALUES ($1, $2, $3::text::jsonb, now())
     ON CONFLICT (name) DO UPDATE SET hash = excluded.hash, description = excluded.description, last_seen_at = excluded.last_seen_at`,
    [name, hash, JSON.stringify(description)],
  );
}
