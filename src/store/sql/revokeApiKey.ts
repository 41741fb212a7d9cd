// Revoking an API key.
import { ANONYMOUS_KEY_ID, API_KEY_COLUMNS, toApiKey, type ApiKey } from '../apiKey.ts';
import type { Queryable } from '../types.ts';

/** Revokes by id or by the printed prefix; returns the revoked key, or null when none matched. */
export async function revokeApiKey(db: Queryable, idOrPrefix: string): Promise<ApiKey | null> {
  const rows = await db.query(
    `UPDATE api_keys SET revoked_at = now()
     WHERE (id::text = $1 OR prefix = $1) AND revoked_at IS NULL AND id <> '${ANONYMOUS_KEY_ID}'
     RETURNING ${API_KEY_COLUMNS}`,
    [idOrPrefix],
  );
  return rows[0] ? toApiKey(rows[0]) : null;
}
