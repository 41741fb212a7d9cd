// One key's unfinished work, for the submit cap.
import { type KeyUsage } from '../apiKey.ts';
import type { Queryable } from '../types.ts';

/** The unfinished generations of a key and their cost, as the submit cap counts them. */
export async function getApiKeyUsage(db: Queryable, apiKeyId: string): Promise<KeyUsage> {
  const rows = await db.query(
    'SELECT coalesce(sum(unfinished), 0) AS n, coalesce(sum(unfinished_cost), 0) AS cost FROM api_key_usage WHERE api_key_id = $1',
    [apiKeyId],
  );
  return { unfinished: Number(rows[0]?.n ?? 0), unfinishedCost: Number(rows[0]?.cost ?? 0) };
}
