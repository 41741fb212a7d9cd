import { denoisingSteps, generationCost, type GenerationParams } from '../../core/request.ts';
import type { Queryable } from '../types.ts';
import { toDate } from '../types.ts';
import type { Generation } from '../generation.ts';

export interface NewGeneration {
  apiKeyId: string;
  /** The owner's cap on unfinished generations. */
  maxUnfinished: number;
  /** The owner's cap on their cost, this one's included. */
  maxUnfinishedCost: number;
  idempotencyKey: string | null;
  requestHash: string | null;
  params: GenerationParams;
  /** Where its events are POSTed and which (src/webhooks/); absent: none. */
  webhook?: { url: string; events: string[] } | undefined;
  /** The submit's trace context (src/telemetry/), for the work that follows to join; null without traces. */
  traceparent?: string | null;
}

/** What became of one row of an insert. */
export type InsertOutcome =
  | { kind: 'created'; generation: Generation }
  /** Its idempotency key is taken: by an earlier generation, or by an earlier row of the same statement. */
  | { kind: 'taken' }
  /** Over a cap: the owner's unfinished generations and their cost when this row's turn came. */
  | { kind: 'over_cap'; unfinished: number; unfinishedCost: number };

/**
 * The rows come as one JSON parameter (one statement text whatever their number, nothing for the
 * drivers to guess about arrays). Each row passes the caps in input order, as if submitted one by
 * one: `walk` carries each key's count and cost from row to row, starting from the key's counter
 * row, which `usage` locks. The lock reads the newest committed count (READ COMMITTED re-reads a
 * row it waited for) and holds off every other submit of the key until this one commits, so the
 * caps are exact however many statements run at once. Only the first row of an idempotency key not
 * yet taken is inserted; the rest are `taken`. The counter itself is kept by the statement-level
 * trigger of migration 011. RETURNING names only what the row's defaults decide.
 */
export const INSERT_GENERATIONS_SQL = `WITH RECURSIVE
  input AS MATERIALIZED (
    SELECT t.*, CASE WHEN t.ik IS NULL THEN 1 ELSE row_number() OVER (PARTITION BY t.k, t.ik ORDER BY t.i) END AS copy
    FROM jsonb_to_recordset($1::text::jsonb)
      AS t(i int, k uuid, mu int, mc bigint, ik text, rh text, p jsonb, ts int, c int, wu text, we text[], tp text)),
  usage AS MATERIALIZED (
    SELECT api_key_id, unfinished, unfinished_cost FROM api_key_usage
    WHERE slot = 0 AND api_key_id IN (SELECT k FROM input) ORDER BY api_key_id FOR UPDATE),
  fresh AS MATERIALIZED (
    SELECT f.*, row_number() OVER (PARTITION BY f.k ORDER BY f.i) AS rn FROM input f
    WHERE f.copy = 1
      AND (f.ik IS NULL OR NOT EXISTS (SELECT 1 FROM generations g WHERE g.api_key_id = f.k AND g.idempotency_key = f.ik))),
  walk (k, rn, i, ok, n, cost) AS (
    SELECT keys.k, 0::bigint, NULL::int, NULL::boolean, coalesce(u.unfinished, 0)::bigint, coalesce(u.unfinished_cost, 0)::bigint
    FROM (SELECT DISTINCT k FROM fresh) keys LEFT JOIN usage u ON u.api_key_id = keys.k
    UNION ALL
    SELECT w.k, f.rn, f.i, fits.ok, w.n + fits.ok::int, w.cost + CASE WHEN fits.ok THEN f.c ELSE 0 END
    FROM walk w JOIN fresh f ON f.k = w.k AND f.rn = w.rn + 1,
      LATERAL (SELECT w.n < f.mu AND w.cost + f.c <= f.mc AS ok) fits),
  admitted AS MATERIALIZED (
    SELECT gen_random_uuid() AS id, f.* FROM fresh f JOIN walk w ON w.i = f.i WHERE w.ok),
  inserted AS (
    INSERT INTO generations (id, api_key_id, idempotency_key, request_hash, params, total_steps, cost, webhook_url, webhook_events, traceparent)
    SELECT id, k, ik, rh, p, ts, c, wu, we, tp FROM admitted ORDER BY i
    ON CONFLICT (api_key_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING id, seq, created_at),
  outbox AS (
    INSERT INTO dispatch_outbox (generation_id) SELECT id FROM inserted)
SELECT input.i, inserted.id, inserted.seq, inserted.created_at, w.ok AS fits, w.n AS unfinished, w.cost AS unfinished_cost
FROM input
  LEFT JOIN walk w ON w.i = input.i
  LEFT JOIN admitted a ON a.i = input.i
  LEFT JOIN inserted ON inserted.id = a.id
ORDER BY input.i`;

/** The statement's one parameter for `rows`; also what bench:gateway's pgbench phase sends. */
export function insertGenerationsParam(rows: readonly NewGeneration[]): string {
  return JSON.stringify(
    rows.map((g, i) => ({
      i,
      k: g.apiKeyId,
      mu: g.maxUnfinished,
      mc: g.maxUnfinishedCost,
      ik: g.idempotencyKey,
      rh: g.requestHash,
      p: g.params,
      ts: denoisingSteps(g.params),
      c: generationCost(g.params),
      wu: g.webhook?.url ?? null,
      we: g.webhook?.events ?? null,
      tp: g.traceparent ?? null,
    })),
  );
}

/**
 * Inserts pending generations and their outbox rows in one statement (group commit,
 * docs/architecture.md decision 17): each row is created, or refused alone because its
 * idempotency key is taken or its owner is over a cap. Outcomes come in the order of `rows`.
 */
export async function insertGenerations(db: Queryable, rows: readonly NewGeneration[]): Promise<InsertOutcome[]> {
  if (rows.length === 0) return [];
  const result = await db.query(INSERT_GENERATIONS_SQL, [insertGenerationsParam(rows)]);
  return rows.map((g, i) => {
    const r = result[i];
    if (!r || Number(r.i) !== i) throw new Error(`insertGenerations: no outcome for row ${i}`);
    if (r.id != null) return { kind: 'created', generation: pendingGeneration(g, r.id, r.seq, r.created_at) };
    if (r.fits === false) return { kind: 'over_cap', unfinished: Number(r.unfinished), unfinishedCost: Number(r.unfinished_cost) };
    return { kind: 'taken' };
  });
}

/** One row: the generation, or null when its idempotency key is taken or a cap refuses it (the caller tells them apart). */
export async function insertGeneration(db: Queryable, g: NewGeneration): Promise<Generation | null> {
  const [outcome] = await insertGenerations(db, [g]);
  return outcome?.kind === 'created' ? outcome.generation : null;
}

/** A just-inserted generation: what it was given, the columns' defaults, and what the row decided. */
function pendingGeneration(g: NewGeneration, id: unknown, seq: unknown, createdAt: unknown): Generation {
  const created = toDate(createdAt);
  return {
    id: String(id),
    seq: Number(seq),
    apiKeyId: g.apiKeyId,
    params: g.params,
    status: 'pending',
    version: 1,
    step: 0,
    totalSteps: denoisingSteps(g.params),
    cost: generationCost(g.params),
    attempts: 0,
    runnerId: null,
    leaseExpiresAt: null,
    errorCode: null,
    errorMessage: null,
    images: null,
    createdAt: created,
    startedAt: null,
    finishedAt: null,
    // Both columns default to now(), the transaction's start.
    updatedAt: created,
    idempotencyKey: g.idempotencyKey,
    requestHash: g.requestHash,
    webhookUrl: g.webhook?.url ?? null,
    webhookEvents: g.webhook?.events ?? null,
    ran: null,
    timings: null,
    previewStep: null,
    traceparent: g.traceparent ?? null,
  };
}
