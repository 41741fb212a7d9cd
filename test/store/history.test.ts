// A key's history, filtered or not, on real PostgreSQL and on PGlite (docs/architecture.md,
// decision 18): every page is right, and is an index range read that touches about a page's worth
// of buffers however long the key's history, in the generic plan of a prepared statement (what
// the postgres driver runs after a few executions) and in a custom one. Migration 012 applies to
// a table that already has rows, and rebuilds the invalid index a failed concurrent build leaves.
import postgres from 'postgres';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { STATUSES, type GenerationStatus } from '../../src/core/status.ts';
import { migrate } from '../../src/store/migrate.ts';
import { listGenerations, listStatement, type ListQuery } from '../../src/store/sql/listGenerations.ts';
import type { Db } from '../../src/store/types.ts';
import { uniqueName } from '../helpers/services.ts';
import { openTestStore } from '../helpers/store.ts';

const KEY = '0a0a0a0a-0000-4000-8000-000000000001';
const OTHER_KEY = '0b0b0b0b-0000-4000-8000-000000000002';
/** Rows per key: a scan of a key's history reads some 150 heap pages; a page of 20 about 25 buffers. */
const ROWS_PER_KEY = 6000;
const PAGE = 20;
/** A page's buffers: one heap page per row at most, the index's descent and a leaf or two. */
const MAX_PAGE_BUFFERS = PAGE + 1 + 10;
const MIGRATION = '012_history_by_status.sql';
const INDEX = 'generations_history_by_status';

/**
 * The status of a key's i-th generation (1 = oldest): mostly completed, failed and canceled
 * spread through, three processing ones and the 40 oldest pending, so every status but completed
 * is rare and most of them far down the history. Every 50th completed one is deleted.
 */
const STATUS_OF = `CASE WHEN i IN (100, 2000, 4000) THEN 'processing' WHEN i <= 40 THEN 'pending'
  WHEN i % 50 = 0 THEN 'failed' WHEN i % 50 = 25 THEN 'canceled' ELSE 'completed' END`;

/** Both keys' histories, interleaved in submission order. */
async function seed(db: Db): Promise<void> {
  await db.transaction(async (tx) => {
    // Made-up history, not the state machine's work: the triggers (unfinished counts, webhooks,
    // notifications) are not what is tested, and counting 12,000 inserts on one row is slow.
    await tx.exec(`SET LOCAL session_replication_role = replica;
      INSERT INTO generations (api_key_id, params, status, total_steps, cost, finished_at, deleted_at)
      SELECT CASE WHEN j % 2 = 0 THEN '${KEY}'::uuid ELSE '${OTHER_KEY}'::uuid END, '{"prompt":"a lantern"}', s.status, 20, 1,
             CASE WHEN s.status IN ('completed', 'failed', 'canceled') THEN now() END,
             CASE WHEN s.status = 'completed' AND i % 50 = 10 THEN now() END
      FROM generate_series(1, ${2 * ROWS_PER_KEY}) j, LATERAL (SELECT (j + 1) / 2 AS i) k, LATERAL (SELECT ${STATUS_OF} AS status) s`);
  });
  await db.exec('ANALYZE generations');
}

/** What a listing must return: the key's visible generations, newest first, without LIMIT or cursor. */
async function expected(db: Db, status: GenerationStatus | undefined): Promise<number[]> {
  const rows = await db.query<{ seq: number }>(
    `SELECT seq FROM generations WHERE api_key_id = $1 AND deleted_at IS NULL AND ($2::text IS NULL OR status = $2) ORDER BY seq DESC`,
    [KEY, status ?? null],
  );
  return rows.map((r) => Number(r.seq));
}

/** Every page of a listing, following next cursors as the route does. */
async function allPages(db: Db, status: GenerationStatus | undefined): Promise<number[]> {
  const seen: number[] = [];
  let beforeSeq: number | undefined;
  for (;;) {
    const rows = await listGenerations(db, { apiKeyId: KEY, status, limit: PAGE + 1, beforeSeq });
    const page = rows.slice(0, PAGE);
    seen.push(...page.map((g) => g.seq));
    if (rows.length <= PAGE) return seen;
    beforeSeq = page[page.length - 1]!.seq;
  }
}

const literal = (v: unknown) => (v === null ? 'NULL' : typeof v === 'number' ? String(v) : `'${String(v).replaceAll("'", "''")}'`);

interface PlanNode {
  'Node Type': string;
  'Index Name'?: string;
  'Scan Direction'?: string;
  'Rows Removed by Filter'?: number;
  'Shared Hit Blocks': number;
  'Shared Read Blocks': number;
  Plans?: PlanNode[];
}

function nodes(n: PlanNode): PlanNode[] {
  return [n, ...(n.Plans ?? []).flatMap(nodes)];
}

/** EXPLAIN (ANALYZE, BUFFERS) of the statement as prepared, under a generic or a custom plan. */
async function explain(db: Db, q: ListQuery, mode: 'generic' | 'custom'): Promise<PlanNode> {
  const { text, params } = listStatement(q);
  const name = uniqueName('list');
  return db.transaction(async (tx) => {
    await tx.exec(`SET LOCAL plan_cache_mode = force_${mode}_plan; PREPARE ${name} AS ${text}`);
    try {
      const rows = await tx.query<{ 'QUERY PLAN': unknown }>(
        `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE ${name}(${params.map(literal).join(', ')})`,
      );
      const doc = rows[0]!['QUERY PLAN'];
      return ((typeof doc === 'string' ? JSON.parse(doc) : doc) as [{ Plan: PlanNode }])[0].Plan;
    } finally {
      await tx.exec(`DEALLOCATE ${name}`);
    }
  });
}

async function indexState(db: Db): Promise<{ valid: boolean; definition: string } | null> {
  const rows = await db.query<{ valid: boolean; definition: string }>(
    `SELECT i.indisvalid AS valid, pg_get_indexdef(i.indexrelid) AS definition FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
     WHERE c.relname = $1 AND c.relnamespace = current_schema()::regnamespace`,
    [INDEX],
  );
  return rows[0] ?? null;
}

/** Undoes migration 012, so the next migrate() applies it again to the rows there are. */
async function unapply(db: Db): Promise<void> {
  await db.exec(`DROP INDEX IF EXISTS ${INDEX}; DELETE FROM schema_migrations WHERE version = 12`);
}

for (const backend of ['postgres', 'pglite'] as const) {
  const it = suite<{ db: Db; cleanup: () => Promise<void> }>(`history on ${backend}`);

  it.before(async (ctx) => {
    Object.assign(ctx, await openTestStore(backend, 'itemgen_history', 2));
    await seed(ctx.db);
  });
  it.after(async (ctx) => {
    await ctx.db.close();
    await ctx.cleanup();
  });

  it('every page of every listing, filtered or not, following the cursor', async ({ db }) => {
    for (const status of [undefined, ...STATUSES]) {
      const want = await expected(db, status);
      assert.ok(want.length > 0, `the seed has ${status ?? 'any'} generations`);
      assert.equal(await allPages(db, status), want, `status ${status ?? '(none)'}`);
    }
  });

  it('a status page is a backward range read of its (key, status) entries, about a page of buffers, deep or not', async ({ db }) => {
    for (const status of STATUSES) {
      const seqs = await expected(db, status);
      // The first page, and one from the middle of the status's history (the deep page a cursor asks for).
      for (const beforeSeq of [undefined, seqs[Math.floor(seqs.length / 2)]!]) {
        for (const mode of ['generic', 'custom'] as const) {
          const what = `${status}, ${beforeSeq === undefined ? 'first page' : 'deep page'}, ${mode} plan`;
          const plan = await explain(db, { apiKeyId: KEY, status, limit: PAGE + 1, beforeSeq }, mode);
          const all = nodes(plan);
          const scan = all.find((n) => n['Index Name'] !== undefined);
          assert.is(scan?.['Index Name'], INDEX, what);
          assert.is(scan?.['Scan Direction'], 'Backward', what);
          assert.ok(!all.some((n) => n['Node Type'] === 'Sort'), `${what}: no sort`);
          assert.is(scan?.['Rows Removed by Filter'] ?? 0, 0, `${what}: every entry read is a row returned`);
          const buffers = plan['Shared Hit Blocks'] + plan['Shared Read Blocks'];
          assert.ok(buffers <= MAX_PAGE_BUFFERS, `${what}: ${buffers} buffers`);
        }
      }
    }
  });

  it('the unfiltered page reads the owner index, about a page of buffers, deep or not', async ({ db }) => {
    const seqs = await expected(db, undefined);
    for (const beforeSeq of [undefined, seqs[Math.floor(seqs.length / 2)]!]) {
      for (const mode of ['generic', 'custom'] as const) {
        const what = `${beforeSeq === undefined ? 'first page' : 'deep page'}, ${mode} plan`;
        const plan = await explain(db, { apiKeyId: KEY, limit: PAGE + 1, beforeSeq }, mode);
        const all = nodes(plan);
        assert.is(all.find((n) => n['Index Name'] !== undefined)?.['Index Name'], 'generations_by_owner', what);
        assert.ok(!all.some((n) => n['Node Type'] === 'Sort'), `${what}: no sort`);
        const buffers = plan['Shared Hit Blocks'] + plan['Shared Read Blocks'];
        assert.ok(buffers <= MAX_PAGE_BUFFERS, `${what}: ${buffers} buffers`);
      }
    }
  });

  it('migration 012 applies to a table with rows, and rebuilds an invalid index a failed concurrent build left', async ({ db }) => {
    await unapply(db);
    assert.equal(await migrate(db), [MIGRATION]);
    const built = await indexState(db);
    assert.is(built?.valid, true);
    assert.match(built!.definition, /\(api_key_id, status, seq\) WHERE \(deleted_at IS NULL\)$/);

    // What an operator's CREATE INDEX CONCURRENTLY that failed leaves: an invalid index of the name.
    await unapply(db);
    try {
      await db.exec(`CREATE UNIQUE INDEX CONCURRENTLY ${INDEX} ON generations (api_key_id)`);
      assert.unreachable('the keys repeat, so the unique build fails');
    } catch (err) {
      assert.match(String(err), /could not create unique index/);
    }
    assert.is((await indexState(db))?.valid, false);
    assert.equal(await migrate(db), [MIGRATION]);
    assert.equal(await indexState(db), built, 'the invalid one replaced by the real one');

    // One built beforehand with the same definition (an operator's CONCURRENTLY build, done; not
    // concurrent here, where it would wait for every older transaction in the shared database).
    await unapply(db);
    await db.exec(`CREATE INDEX ${INDEX} ON generations (api_key_id, status, seq) WHERE deleted_at IS NULL`);
    const oid = await db.query(`SELECT $1::regclass::oid AS oid`, [INDEX]);
    assert.equal(await migrate(db), [MIGRATION]);
    assert.equal(await db.query(`SELECT $1::regclass::oid AS oid`, [INDEX]), oid, 'kept, not rebuilt');
  });

  it.run();
}
