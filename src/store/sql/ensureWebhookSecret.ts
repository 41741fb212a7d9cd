// The webhook signing secret of an API key, set on first use (migration 005).
import type { Queryable } from '../types.ts';

/**
 * The key's secret; `candidate` becomes it when it has none yet. Concurrent first uses agree: the
 * second UPDATE waits for the first and then keeps its value. Null: no such key.
 */
export async function ensureWebhookSecret(db: Queryable, apiKeyId: string, candidate: string): Promise<string | null> {
  const rows = await db.query(
    'UPDATE api_keys SET webhook_secret = coalesce(webhook_secret, $2) WHERE id = $1 RETURNING webhook_secret',
    [apiKeyId, candidate],
  );
  return rows[0] ? String(rows[0].webhook_secret) : null;
}
