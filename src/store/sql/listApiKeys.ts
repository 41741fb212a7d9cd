// Every API key, revoked ones included, oldest first.
import { ANONYMOUS_KEY_ID, API_KEY_COLUMNS, toApiKey, type ApiKey } from '../apiKey.ts';
import type { Queryable } from '../types.ts';

export async function listApiKeys(db: Queryable): Promise<ApiKey[]> {
  const rows = await db.query(`SELECT ${API_KEY_COLUMNS} FROM api_keys WHERE id <> '${ANONYMOUS_KEY_ID}' ORDER BY created_at`);
  return rows.map(toApiKey);
}
