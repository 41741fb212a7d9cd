// Every key's unfinished work, for /metrics.
import { type KeyUsage } from '../apiKey.ts';
import type { Queryable } from '../types.ts';

/** Every key's usage with its name, for /metrics. */
export async function listApiKeyUsage(db: Queryable): Promise<(KeyUsage & { apiKeyId: string; name: string })[]> {
  const rows = await db.query(
    `SELECT u.api_key_id, coalesce(k.name, '') AS name, sum(u.unfinished) AS n, sum(u.unfinished_cost) AS cost
     FROM api_key_usage u LEFT JOIN api_keys k ON k.id = u.api_key_id GROUP BY u.api_key_id, k.name`,
  );
  return rows.map((r) => ({ apiKeyId: String(r.api_key_id), name: String(r.name), unfinished: Number(r.n), unfinishedCost: Number(r.cost) }));
}
