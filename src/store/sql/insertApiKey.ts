// Creating an API key.
import { ANONYMOUS_KEY_ID, API_KEY_COLUMNS, toApiKey, type ApiKey } from '../apiKey.ts';
import type { Queryable } from '../types.ts';

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
       RETURNING ${API_KEY_COLUMNS}),
     adopted AS (
       UPDATE generations SET api_key_id = (SELECT id FROM created) WHERE api_key_id = '${ANONYMOUS_KEY_ID}' RETURNING 1),
     usage AS (
       UPDATE api_key_usage SET api_key_id = (SELECT id FROM created) WHERE api_key_id = '${ANONYMOUS_KEY_ID}')
     SELECT created.*, (SELECT count(*) FROM adopted) AS adopted FROM created`,
    [k.name, k.keyHash, k.prefix, k.maxUnfinished, k.maxUnfinishedCost ?? null],
  );
  return { ...toApiKey(rows[0]!), adopted: Number(rows[0]!.adopted) };
}
