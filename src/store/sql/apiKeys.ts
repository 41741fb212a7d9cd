// API keys: one function per statement.
import type { Queryable, Row } from '../types.ts';

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

export const ANONYMOUS_KEY_ID = '00000000-0000-0000-0000-000000000000';

const toApiKey = (r: Row): ApiKey => ({
  id: String(r.id),
  name: String(r.name),
  prefix: String(r.prefix),
  maxUnfinished: Number(r.max_unfinished),
  maxUnfinishedCost: r.max_unfinished_cost == null ? null : Number(r.max_unfinished_cost),
  createdAt: r.created_at as Date,
  revokedAt: (r.revoked_at as Date | null) ?? null,
});

const COLUMNS = 'id, name, prefix, max_unfinished, max_unfinished_cost, created_at, revoked_at';

/**
 * Creates a key, which takes over the history made without one (the open mode's anonymous owner):
 * generations and their unfinished count move to it, so nothing made before the first key becomes
 * unreachable once keys are required. Creations serialize on the anonymous owner's row.
 */
export async function insertApiKey(
  db: Queryable,
  k: { name: string; keyHash: string; prefix: string; maxUnfinished: number; maxUnfinishedCost?: number | null },
): Promise<ApiKey & { adopted: number }> {
  const rows = await db.query(
    `WITH anonymous AS (SELECT id FROM api_keys WHERE id = '${ANONYMOUS_KEY_ID}' FOR UPDATE),
     created AS (
       INSERT INTO api_keys (name, key_hash, prefix, max_unfinished, max_unfinished_cost)
       SELECT $1, $2, $3, $4, $5 FROM anonymous
       RETURNING ${COLUMNS}),
     adopted AS (
       UPDATE generations SET api_key_id = (SELECT id FROM created) WHERE api_key_id = '${ANONYMOUS_KEY_ID}' RETURNING 1),
     usage AS (
       UPDATE api_key_usage SET api_key_id = (SELECT id FROM created) WHERE api_key_id = '${ANONYMOUS_KEY_ID}')
     SELECT created.*, (SELECT count(*) FROM adopted) AS adopted FROM created`,
    [k.name, k.keyHash, k.prefix, k.maxUnfinished, k.maxUnfinishedCost ?? null],
  );
  return { ...toApiKey(rows[0]!), adopted: Number(rows[0]!.adopted) };
}

export async function findActiveApiKeyByHash(db: Queryable, keyHash: string): Promise<ApiKey | null> {
  const rows = await db.query(
    `SELECT ${COLUMNS} FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL AND id <> '${ANONYMOUS_KEY_ID}'`,
    [keyHash],
  );
  return rows[0] ? toApiKey(rows[0]) : null;
}

export async function listApiKeys(db: Queryable): Promise<ApiKey[]> {
  const rows = await db.query(`SELECT ${COLUMNS} FROM api_keys WHERE id <> '${ANONYMOUS_KEY_ID}' ORDER BY created_at`);
  return rows.map(toApiKey);
}

/** Revokes by id or by the printed prefix; returns the revoked key, or null when none matched. */
export async function revokeApiKey(db: Queryable, idOrPrefix: string): Promise<ApiKey | null> {
  const rows = await db.query(
    `UPDATE api_keys SET revoked_at = now()
     WHERE (id::text = $1 OR prefix = $1) AND revoked_at IS NULL AND id <> '${ANONYMOUS_KEY_ID}'
     RETURNING ${COLUMNS}`,
    [idOrPrefix],
  );
  return rows[0] ? toApiKey(rows[0]) : null;
}

export async function countActiveApiKeys(db: Queryable): Promise<number> {
  const rows = await db.query(
    `SELECT count(*) AS n FROM api_keys WHERE revoked_at IS NULL AND id <> '${ANONYMOUS_KEY_ID}'`,
  );
  return Number(rows[0]?.n ?? 0);
}

export interface KeyUsage {
  unfinished: number;
  unfinishedCost: number;
}

/** The unfinished generations of a key and their cost, as the submit cap counts them. */
export async function getApiKeyUsage(db: Queryable, apiKeyId: string): Promise<KeyUsage> {
  const rows = await db.query(
    'SELECT coalesce(sum(unfinished), 0) AS n, coalesce(sum(unfinished_cost), 0) AS cost FROM api_key_usage WHERE api_key_id = $1',
    [apiKeyId],
  );
  return { unfinished: Number(rows[0]?.n ?? 0), unfinishedCost: Number(rows[0]?.cost ?? 0) };
}

/** Every key's usage with its name, for /metrics. */
export async function listApiKeyUsage(db: Queryable): Promise<(KeyUsage & { apiKeyId: string; name: string })[]> {
  const rows = await db.query(
    `SELECT u.api_key_id, coalesce(k.name, '') AS name, sum(u.unfinished) AS n, sum(u.unfinished_cost) AS cost
     FROM api_key_usage u LEFT JOIN api_keys k ON k.id = u.api_key_id GROUP BY u.api_key_id, k.name`,
  );
  return rows.map((r) => ({ apiKeyId: String(r.api_key_id), name: String(r.name), unfinished: Number(r.n), unfinishedCost: Number(r.cost) }));
}
