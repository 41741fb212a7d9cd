// How many keys can authenticate (none: the open or the locked mode).
import { ANONYMOUS_KEY_ID } from '../apiKey.ts';
import type { Queryable } from '../types.ts';

export async function countActiveApiKeys(db: Queryable): Promise<number> {
  const rows = await db.query(
    `SELECT count(*) AS n FROM api_keys WHERE revoked_at IS NULL AND id <> '${ANONYMOUS_KEY_ID}'`,
  );
  return Number(rows[0]?.n ?? 0);
}
