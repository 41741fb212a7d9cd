// bench:gateway's history phase (docs/architecture.md, decision 18): GET /v1/generations at
// 100k generations of one key, unfiltered and with each status, the first page and a deep one (a
// cursor halfway down that listing), one connection, p50/p99 and the buffers the statement reads
// per page; and what the history index costs writes: submit → claim → progress → complete
// lifecycles, in rounds with the index and without it (dropped and built again), interleaved.
// Each figure stands beside one measured in the same run: the unfiltered page, the writes without
// the index.
import postgres from 'postgres';
import { STATUSES, type GenerationStatus } from '../../src/core/status.ts';
import type { GenerationParams } from '../../src/core/request.ts';
import { openDb } from '../../src/store/openDb.ts';
import { claimGeneration } from '../../src/store/sql/claimGeneration.ts';
import { completeGeneration } from '../../src/store/sql/completeGeneration.ts';
import { insertGeneration } from '../../src/store/sql/insertGeneration.ts';
import { listStatement } from '../../src/store/sql/listGenerations.ts';
import { reportProgress } from '../../src/store/sql/reportProgress.ts';
import { createBenchKey, failures, fmtMs, pad, percentile, verdict } from './common.ts';
import type { LoadJob, LoadResult } from './load-worker.ts';

const ROWS = 100_000;
const PAGE = 20;
/** Seconds per listing per round, and rounds: each listing runs once a round, in turn with the others. */
const CASE_S = Number(process.env.BENCH_HISTORY_CASE_S ?? 0.5);
const LIST_ROUNDS = 3;
const WARMUP_S = 2;
const INDEX = 'generations_history_by_status';
/** Lifecycles per write round, progress reports in each, rounds per variant. */
const LIFECYCLES = 150;
const PROGRESS_REPORTS = 10;
const WRITE_ROUNDS = 5;

export const HISTORY_TARGETS = {
  /** p50 of a filtered page, first or deep (issue 15). */
  filteredP50Ms: 2,
  /** A filtered page's p50 against the unfiltered page's of the same run and depth. */
  filteredVsUnfiltered: 1.25,
  /** A lifecycle's write time with the index against without. */
  writesWithIndex: 1.1,
};

/**
 * The key's made-up history, newest last: the newest thousand pending (a queue) with eight
 * processing among them, 2 % canceled throughout, twenty failures long ago (all in the oldest
 * 2,000), the rest completed. A rare status far down is what a filter over the owner index paid
 * for: it read the key's whole history to fill a page.
 */
const STATUS_OF = `CASE WHEN i > ${ROWS} - 1000 AND i % 125 = 0 THEN 'processing' WHEN i > ${ROWS} - 1000 THEN 'pending'
  WHEN i <= 2000 AND i % 100 = 0 THEN 'failed' WHEN i % 50 = 1 THEN 'canceled' ELSE 'completed' END`;

export interface ListCase {
  status: GenerationStatus | null;
  deep: boolean;
  path: string;
  p50Ms: number;
  p99Ms: number;
  rows: number;
  buffers: number;
  failed: number;
}

export interface HistoryResult {
  cases: ListCase[];
  /** µs per lifecycle of each round, with and without the index. */
  writesWithUs: number[];
  writesWithoutUs: number[];
  failed: number;
}

export interface HistoryDeps {
  /** The scratch database's URL. */
  databaseUrl: string;
  gatewayUrl: string;
  load: (job: LoadJob) => Promise<LoadResult>;
  /** What the gateway stores for the bench's submit body, so the rows have the size of real ones. */
  storedParams: string;
}

const label = (c: { status: GenerationStatus | null; deep: boolean }) => `${c.status ?? '(all)'} ${c.deep ? 'deep' : 'first'}`;

export async function historyPhase(deps: HistoryDeps): Promise<HistoryResult> {
  const sql = postgres(deps.databaseUrl, { max: 1, onnotice: () => {} });
  try {
    const secret = await createBenchKey(deps.databaseUrl, 'history');
    const keyId = String((await sql`SELECT id FROM api_keys WHERE name = 'history'`)[0]!.id);
    await seed(sql, keyId, deps.storedParams);

    const auth = { authorization: `Bearer ${secret}` };
    const specs: { status: GenerationStatus | null; deep: boolean; beforeSeq?: number }[] = [];
    for (const status of [null, ...STATUSES]) {
      specs.push({ status, deep: false });
      const half = await sql`SELECT seq FROM generations WHERE api_key_id = ${keyId} AND deleted_at IS NULL
        AND (${status}::text IS NULL OR status = ${status}) ORDER BY seq DESC OFFSET (
          SELECT count(*) / 2 FROM generations WHERE api_key_id = ${keyId} AND (${status}::text IS NULL OR status = ${status})) LIMIT 1`;
      specs.push({ status, deep: true, beforeSeq: Number(half[0]!.seq) });
    }
    const pathOf = (s: (typeof specs)[number]) =>
      `/v1/generations?limit=${PAGE}${s.status ? `&status=${s.status}` : ''}${s.beforeSeq === undefined ? '' : `&cursor=${s.beforeSeq}`}`;
    // Every pooled connection of the gateway prepares each statement and, from its sixth run,
    // may switch to the generic plan: the warm-up gets them all there first.
    const job = (durationS: number, path: string | string[]): LoadJob => ({
      url: deps.gatewayUrl,
      connections: 1,
      durationS,
      method: 'GET',
      headers: auth,
      ...(typeof path === 'string' ? { path } : { paths: path }),
    });
    const warm = await deps.load(job(WARMUP_S, specs.map(pathOf)));
    let failed = failures(warm);
    const cases: ListCase[] = [];
    // In turns, so a burst of another workload on the machine costs one round of one listing, which
    // the median over rounds leaves out, rather than the whole of one listing's figure.
    const runs: LoadResult[][] = specs.map(() => []);
    for (let round = 0; round < LIST_ROUNDS; round++) {
      for (const [n, spec] of specs.entries()) runs[n]!.push(await deps.load(job(CASE_S, pathOf(spec))));
    }
    const median = (xs: number[]) => percentile(xs, 50);
    for (const [n, spec] of specs.entries()) {
      const plan = await explain(sql, { apiKeyId: keyId, status: spec.status ?? undefined, limit: PAGE + 1, beforeSeq: spec.beforeSeq });
      const rs = runs[n]!;
      const caseFailed = rs.reduce((sum, r) => sum + failures(r), 0);
      cases.push({ status: spec.status, deep: spec.deep, path: pathOf(spec), p50Ms: median(rs.map((r) => r.p50Ms)), p99Ms: median(rs.map((r) => r.p99Ms)), ...plan, failed: caseFailed });
      failed += caseFailed;
    }

    const writes = await writeCost(deps.databaseUrl, sql, keyId);
    // The lifecycles' outbox rows too: the dispatcher would never clear rows whose generation is
    // gone, and the phases after this one wait for an empty outbox.
    await sql`DELETE FROM dispatch_outbox WHERE generation_id IN (SELECT id FROM generations WHERE api_key_id = ${keyId})`;
    await sql`DELETE FROM generations WHERE api_key_id = ${keyId}`;
    // The phases after this one find the table as they would have without it.
    await sql`VACUUM ANALYZE generations`;
    return { cases, ...writes, failed };
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/** ROWS generations of `keyId`, written at once without the triggers (they are history, not state changes). */
async function seed(sql: postgres.Sql, keyId: string, params: string): Promise<void> {
  await sql.begin(async (tx) => {
    await tx`SET LOCAL session_replication_role = replica`;
    await tx.unsafe(
      `INSERT INTO generations (id, api_key_id, params, status, total_steps, cost, attempts, images, created_at, started_at, finished_at)
       SELECT id, $1, $2::jsonb, s.status, 30, 30, CASE WHEN s.status = 'pending' THEN 0 ELSE 1 END,
              CASE WHEN s.status = 'completed' THEN jsonb_build_array(jsonb_build_object('key', 'generated/' || id || '/0.png', 'seed', 1234567890)) END,
              at, at, CASE WHEN s.status IN ('completed', 'failed', 'canceled') THEN at + interval '20 seconds' END
       FROM generate_series(1, ${ROWS}) i,
            LATERAL (SELECT ${STATUS_OF} AS status, gen_random_uuid() AS id, now() - (${ROWS} - i) * interval '1 minute' AS at) s`,
      [keyId, params],
    );
  });
  await sql`VACUUM ANALYZE generations`;
}

/** The rows and buffers of the store's own statement for `q`. */
async function explain(sql: postgres.Sql, q: Parameters<typeof listStatement>[0]): Promise<{ rows: number; buffers: number }> {
  const { text, params } = listStatement(q);
  const out = await sql.unsafe(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${text}`, params as never[]);
  const plan = (out[0]!['QUERY PLAN'] as [{ Plan: { 'Actual Rows': number; 'Shared Hit Blocks': number; 'Shared Read Blocks': number } }])[0].Plan;
  return { rows: plan['Actual Rows'], buffers: plan['Shared Hit Blocks'] + plan['Shared Read Blocks'] };
}

/** Lifecycles in interleaved rounds with and without the index; µs per lifecycle per round. */
async function writeCost(databaseUrl: string, sql: postgres.Sql, keyId: string): Promise<{ writesWithUs: number[]; writesWithoutUs: number[] }> {
  const definition = String((await sql`SELECT pg_get_indexdef(${INDEX}::regclass) AS d`)[0]!.d);
  const db = await openDb({ databaseUrl, dataDir: '', poolSize: 1 });
  const params: GenerationParams = {
    prompt: 'tsuki_advtr, a glowing sword', negative_prompt: '', num_inference_steps: 30, guidance_scale: 7.5,
    seed: 1234567890, width: 512, height: 512, scheduler: 'ddim', num_images: 1,
  };
  const lifecycles = async (): Promise<number> => {
    const t0 = performance.now();
    for (let n = 0; n < LIFECYCLES; n++) {
      const g = await insertGeneration(db, { apiKeyId: keyId, maxUnfinished: 1e6, maxUnfinishedCost: 1e12, idempotencyKey: null, requestHash: null, params });
      const claimed = await claimGeneration(db, g!.id, 'bench', 60);
      for (let step = 1; step <= PROGRESS_REPORTS; step++) await reportProgress(db, g!.id, claimed!.attempts, step * 3, 30, 60);
      await completeGeneration(db, g!.id, claimed!.attempts, [{ key: `generated/${g!.id}/0.png` }]);
    }
    return ((performance.now() - t0) * 1000) / LIFECYCLES;
  };
  let indexed = true;
  const setIndex = async (want: boolean) => {
    if (want !== indexed) await sql.unsafe(want ? definition : `DROP INDEX ${INDEX}`);
    indexed = want;
  };
  const withUs: number[] = [];
  const withoutUs: number[] = [];
  try {
    await lifecycles(); // warm-up: prepared statements, caches
    for (let round = 0; round < WRITE_ROUNDS; round++) {
      // Alternate which variant goes first, so neither always runs right after an index build.
      for (const withIndex of round % 2 === 0 ? [true, false] : [false, true]) {
        await setIndex(withIndex);
        (withIndex ? withUs : withoutUs).push(await lifecycles());
      }
    }
    await setIndex(true);
  } finally {
    await db.close();
  }
  return { writesWithUs: withUs, writesWithoutUs: withoutUs };
}

/** The phase's table, printed as it ends. */
export function printHistory(r: HistoryResult): void {
  console.log(`\nGET /v1/generations at ${ROWS.toLocaleString('en-US')} rows of one key (limit ${PAGE}, 1 conn; ${LIST_ROUNDS} rounds of ${CASE_S} s per listing, in turns; deep = a cursor halfway down the listing)`);
  console.log(`${pad('listing', 18)} ${pad('p50 ms', 7)} ${pad('p99 ms', 7)} ${pad('vs all', 7)} ${pad('rows', 5)} ${pad('buffers', 8)} ${pad('failed', 7)}`);
  for (const c of r.cases) {
    const all = unfiltered(r, c.deep);
    console.log(
      `${pad(label(c), 18)} ${pad(fmtMs(c.p50Ms), 7)} ${pad(fmtMs(c.p99Ms), 7)} ${pad(((c.p50Ms / all.p50Ms) * 100).toFixed(0) + '%', 7)} ${pad(c.rows, 5)} ${pad(c.buffers, 8)} ${pad(c.failed, 7)}`,
    );
  }
  console.log('  p50, p99: medians over the rounds; vs all = p50 against the unfiltered page of the same depth; rows, buffers = EXPLAIN (ANALYZE, BUFFERS) of the store\'s statement (a page and one more)');
  const median = (xs: number[]) => percentile(xs, 50);
  console.log(`\nwrites with and without ${INDEX} (${LIFECYCLES} lifecycles per round: submit, claim, ${PROGRESS_REPORTS} progress reports, complete; ${WRITE_ROUNDS} rounds each, interleaved)`);
  for (const [name, xs] of [['with', r.writesWithUs], ['without', r.writesWithoutUs]] as const) {
    console.log(`  ${pad(name, 7)}  µs per lifecycle: min ${Math.round(Math.min(...xs))}  median ${Math.round(median(xs))}  max ${Math.round(Math.max(...xs))}`);
  }
}

function unfiltered(r: HistoryResult, deep: boolean): ListCase {
  return r.cases.find((c) => c.status === null && c.deep === deep)!;
}

/** The summary's lines: the figures and their verdicts. */
export function historySummary(r: HistoryResult): string[] {
  const filtered = r.cases.filter((c) => c.status !== null);
  const slowest = filtered.reduce((a, b) => (b.p50Ms > a.p50Ms ? b : a));
  const worstRatio = filtered.reduce((a, b) => (b.p50Ms / unfiltered(r, b.deep).p50Ms > a.p50Ms / unfiltered(r, a.deep).p50Ms ? b : a));
  const ratio = worstRatio.p50Ms / unfiltered(r, worstRatio.deep).p50Ms;
  const median = (xs: number[]) => percentile(xs, 50);
  const writes = median(r.writesWithUs) / median(r.writesWithoutUs);
  const first = unfiltered(r, false);
  return [
    `history list @${ROWS / 1000}k unfiltered    p50 ${pad(fmtMs(first.p50Ms), 5)} ms  p99 ${pad(fmtMs(first.p99Ms), 5)} ms  (deep p50 ${fmtMs(unfiltered(r, true).p50Ms)} ms)`,
    `history list @${ROWS / 1000}k slowest filter p50 ${pad(fmtMs(slowest.p50Ms), 5)} ms  p99 ${pad(fmtMs(slowest.p99Ms), 5)} ms  (${label(slowest)})`,
    `${verdict(slowest.p50Ms <= HISTORY_TARGETS.filteredP50Ms)}  filtered list p50 ≤ ${HISTORY_TARGETS.filteredP50Ms} ms at ${ROWS / 1000}k rows, every status, first and deep pages  (${fmtMs(slowest.p50Ms)} ms, ${label(slowest)})`,
    `${verdict(ratio <= HISTORY_TARGETS.filteredVsUnfiltered)}  filtered list p50 ≤ ${Math.round(HISTORY_TARGETS.filteredVsUnfiltered * 100)}% of the unfiltered one's, same depth, same run  (${(ratio * 100).toFixed(0)}%, ${label(worstRatio)})`,
    `${verdict(writes <= HISTORY_TARGETS.writesWithIndex)}  lifecycle writes with the history index ≤ ${Math.round(HISTORY_TARGETS.writesWithIndex * 100)}% of without  (${(writes * 100).toFixed(1)}%, medians of ${WRITE_ROUNDS})`,
  ];
}
