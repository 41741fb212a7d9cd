// The API key as stored, and the one mapping from a row to it (the key statements in sql/ share it).
import type { Row } from './types.ts';

export interface ApiKey {
  id: string;
  name: string;
  prefix: string;
  maxUnfinished: number;
  /** Cap on the cost of its unfinished generations; null: the gateway's default. */
  maxUnfinishedCost: number | null;
  createdAt: Date;
  revokedAt: Date | null;
}

/** The owner of what is made without a key (the open mode); the first key created takes it over. */
export const ANONYMOUS_KEY_ID = '00000000-0000-0000-0000-000000000000';

export const toApiKey = (r: Row): ApiKey => ({
  id: String(r.id),
  name: String(r.name),
  prefix: String(r.prefix),
  maxUnfinished: Number(r.max_unfinished),
  maxUnfinishedCost: r.max_unfinished_cost == null ? null : Number(r.max_unfinished_cost),
  createdAt: r.created_at as Date,
  revokedAt: (r.revoked_at as Date | null) ?? null,
});

export const API_KEY_COLUMNS = 'id, name, prefix, max_unfinished, max_unfinished_cost, created_at, revoked_at';

export interface KeyUsage {
  unfinished: number;
  unfinishedCost: number;
}
