import type { GenerationStatus } from '../../core/status.ts';
import type { Queryable } from '../types.ts';
import { GENERATION_COLUMNS, toGeneration, type Generation } from '../generation.ts';

export interface ListQuery {
  apiKeyId: string;
  status?: GenerationStatus | undefined;
  limit: number;
  /** Only generations submitted before this sequence number (the cursor). */
  beforeSeq?: number | undefined;
}

// One statement per shape, each a range of one index read newest first that stops after `limit`
// rows (docs/architecture.md, decision 18): the unfiltered list on generations_by_owner
// (api_key_id, seq), a status's on generations_history_by_status (api_key_id, status, seq). One
// text with `($2 IS NULL OR status = $2)` and `($3 IS NULL OR seq < $3)` kept both out of the index
// condition of a prepared statement's generic plan (PostgreSQL's choice from the sixth run on),
// which then filtered the key's history down to the cursor, or all of it for a rare status.
// The status comes through a sub-select, a value the planner does not see: given the constant
// 'pending' (or 'processing') it may prefer the small partial index of every key's pending
// (processing) rows, filtered by owner, and read a whole queue to find one key's page.
const ALL = `SELECT ${GENERATION_COLUMNS} FROM generations
  WHERE api_key_id = $1 AND deleted_at IS NULL AND seq < coalesce($2::bigint, 9223372036854775807)
  ORDER BY seq DESC LIMIT $3`;
const BY_STATUS = `SELECT ${GENERATION_COLUMNS} FROM generations
  WHERE api_key_id = $1 AND status = (SELECT $2::text) AND deleted_at IS NULL AND seq < coalesce($3::bigint, 9223372036854775807)
  ORDER BY seq DESC LIMIT $4`;

/** The statement listGenerations runs for `q`: its text and parameters (for EXPLAIN in tests and the bench). */
export function listStatement(q: ListQuery): { text: string; params: unknown[] } {
  const cursor = q.beforeSeq ?? null;
  return q.status === undefined
    ? { text: ALL, params: [q.apiKeyId, cursor, q.limit] }
    : { text: BY_STATUS, params: [q.apiKeyId, q.status, cursor, q.limit] };
}

/** An owner's generations (not the deleted ones), newest first, keyset-paginated on `seq`. */
export async function listGenerations(db: Queryable, q: ListQuery): Promise<Generation[]> {
  const { text, params } = listStatement(q);
  return (await db.query(text, params)).map(toGeneration);
}
