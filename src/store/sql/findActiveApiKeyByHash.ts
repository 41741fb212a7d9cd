// Authentication's lookup: the unrevoked key with this hash.
import { ANONYMOUS_KEY_ID, API_KEY_COLUMNS, toApiKey, type ApiKey } from '../apiKey.ts';
import type { Queryable } from '../types.ts';

export async function findActiveApiKeyByHash(db: Queryable, keyHash: string): Promise<ApiKey | null> {
  const rows = await db.query(
    `SELECT ${API_KEY_COLUMNS} FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL AND id <> '${ANONYMOUS_KEY_ID}'`,
    [keyHash],
  );
  return rows[0] ? toApiKey(rows[0]) : null;
}
