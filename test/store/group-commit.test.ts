// Group commit of submits (docs/architecture.md, decision 17), on real PostgreSQL and on PGlite:
// submits that wait while a statement is in flight share the next one, and each row of it keeps
// every guarantee a submit of its own had: idempotency (two equal keys in one batch included), the
// caps (exact, and row by row), the outbox, and a row that fails failing alone.
import postgres from 'postgres';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { GenerationParams } from '../../src/core/request.ts';
import type { GatewayDeps } from '../../src/gateway/deps.ts';
import { createGatewayMetrics } from '../../src/gateway/metrics.ts';
import { submitGeneration } from '../../src/gateway/submit.ts';
import type { Principal } from '../../src/gateway/auth.ts';
import { groupCommit } from '../../src/store/group-commit.ts';
import { insertGeneration, insertGenerations, type InsertOutcome, type NewGeneration } from '../../src/store/sql/insertGeneration.ts';
import { toDate, type Db, type Queryable, type Row } from '../../src/store/types.ts';
import { uniqueName } from '../helpers/services.ts';
import { openTestStore } from '../helpers/store.ts';

const params: GenerationParams = {
  prompt: 'a lantern',
  negative_prompt: '',
  num_inference_steps: 20,
  guidance_scale: 7.5,
  seed: 7,
  width: 512,
  height: 512,
  scheduler: 'ddim',
  num_images: 1,
};
/** What `params` costs: 4 (512²) × 20 steps × 2 (guided). */
const COST = 160;

/**
 * `db` with the row count of each submit statement recorded, and the first statement held until
 * `release()`: the submits made meanwhile wait in the group commit and go together in the next one.
 */
function heldDb(db: Queryable) {
  const batches: number[] = [];
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let started!: () => void;
  const firstStarted = new Promise<void>((resolve) => (started = resolve));
  const held: Queryable = {
    async query<T extends Row>(text: string, values?: unknown[]): Promise<T[]> {
      batches.push((JSON.parse(String(values![0])) as unknown[]).length);
      if (batches.length === 1) {
        started();
        await released;
      }
      return db.query<T>(text, values);
    },
  };
  return { held, batches, release, firstStarted };
}

for (const backend of ['postgres', 'pglite'] as const) {
  const it = suite<{ db: Db; cleanup: () => Promise<void> }>(`group commit on ${backend}`);

  it.before(async (ctx) => {
    Object.assign(ctx, await openTestStore(backend, 'itemgen_group', 16));
  });
  it.after(async (ctx) => {
    await ctx.db.close();
    await ctx.cleanup();
  });

  /** A key of its own for each test, with its caps (its counter row is made with it). */
  const newKey = async (db: Db, maxUnfinished = 1000, maxUnfinishedCost = 1e9) => {
    const rows = await db.query(
      `INSERT INTO api_keys (name, key_hash, prefix, max_unfinished, max_unfinished_cost) VALUES ('t', $1, 'p', $2, $3) RETURNING id`,
      [uniqueName('hash'), maxUnfinished, maxUnfinishedCost],
    );
    const id = String(rows[0]!.id);
    const row = (extra: Partial<NewGeneration> = {}): NewGeneration => ({
      apiKeyId: id, maxUnfinished, maxUnfinishedCost, idempotencyKey: null, requestHash: null, params, ...extra,
    });
    return { id, row };
  };
  const count = async (db: Db, sql: string, values: unknown[]) => Number((await db.query(sql, values))[0]!.n);
  const rowsOf = (db: Db, key: string) => count(db, 'SELECT count(*) AS n FROM generations WHERE api_key_id = $1', [key]);
  const outboxOf = (db: Db, key: string) =>
    count(db, 'SELECT count(*) AS n FROM dispatch_outbox o JOIN generations g ON g.id = o.generation_id WHERE g.api_key_id = $1', [key]);
  const counted = (db: Db, key: string) => count(db, 'SELECT coalesce(sum(unfinished), 0) AS n FROM api_key_usage WHERE api_key_id = $1', [key]);
  const kinds = (outcomes: InsertOutcome[]) => outcomes.map((o) => o.kind);

  it('submits that arrive while a statement is in flight go together in the next one; one alone is sent at once', async ({ db }) => {
    const k = await newKey(db);
    const { held, batches, release, firstStarted } = heldDb(db);
    const inserter = groupCommit(held, { maxInFlight: 1 });
    const first = inserter.insert(k.row());
    await firstStarted;
    const rest = [1, 2, 3, 4].map(() => inserter.insert(k.row()));
    release();
    assert.equal(kinds([await first, ...(await Promise.all(rest))]), ['created', 'created', 'created', 'created', 'created']);
    assert.equal(batches, [1, 4]);
    assert.is(await rowsOf(db, k.id), 5);
    assert.is(await outboxOf(db, k.id), 5, 'each row has its outbox row');
    assert.is(await counted(db, k.id), 5, 'the counter counts every row of a statement');
    const ids = (await Promise.all(rest)).map((o) => (o.kind === 'created' ? o.generation.id : ''));
    assert.is(new Set(ids).size, 4);
  });

  it('the answer is the stored row: only the defaults come back from the statement', async ({ db }) => {
    const k = await newKey(db);
    const g = (await insertGeneration(db, k.row({ idempotencyKey: 'same-as-stored', requestHash: 'h', webhook: { url: 'https://example.com/hook', events: ['completed'] }, traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' })))!;
    const stored = (await db.query(`SELECT id, seq, created_at, updated_at, version, total_steps, cost, webhook_events FROM generations WHERE id = $1`, [g.id]))[0]!;
    assert.equal([g.seq, g.createdAt.getTime(), g.updatedAt.getTime(), g.version, g.totalSteps, g.cost, g.webhookEvents], [
      Number(stored.seq), toDate(stored.created_at).getTime(), toDate(stored.updated_at).getTime(), stored.version, stored.total_steps, stored.cost, stored.webhook_events,
    ]);
    assert.is(g.cost, COST);
  });

  it('two identical idempotency keys in one batch: one row, and both submits answer with it', async ({ db }) => {
    const k = await newKey(db);
    const { held, batches, release, firstStarted } = heldDb(db);
    const deps = {
      db,
      inserter: groupCommit(held, { maxInFlight: 1 }),
      metrics: createGatewayMetrics(() => true),
      dispatcher: { enqueue: () => {} },
      settings: { maxGenerationCost: 1e9 },
    } as unknown as GatewayDeps;
    const principal = { apiKeyId: k.id, maxUnfinished: 1000, maxUnfinishedCost: 1e9 } as Principal;
    const request = { ...params, seed: 7 };
    const other = submitGeneration(deps, principal, request, 'other');
    await firstStarted;
    const twins = [submitGeneration(deps, principal, request, 'twin'), submitGeneration(deps, principal, request, 'twin')];
    const reused = submitGeneration(deps, principal, { ...request, prompt: 'another body' }, 'twin');
    release();
    const [a, b] = await Promise.all(twins);
    await other;
    assert.equal(batches, [1, 3], 'the twins and the reuse went in one statement');
    assert.is(a!.generation.id, b!.generation.id);
    assert.equal([a!.replayed, b!.replayed], [false, true]);
    assert.equal(b!.generation.params, a!.generation.params);
    const err = await reused.then(() => null, (e: unknown) => e as { code?: string; status?: number });
    assert.equal([err?.status, err?.code], [422, 'idempotency_key_reused']);
    assert.is(await count(db, 'SELECT count(*) AS n FROM generations WHERE api_key_id = $1 AND idempotency_key = $2', [k.id, 'twin']), 1);
    assert.is(await counted(db, k.id), 2, 'the twin counts once');
  });

  it('over the caps, a row fails alone, in submission order: the count cap and the compute budget', async ({ db }) => {
    const byCount = await newKey(db, 2);
    const outcomes = await insertGenerations(db, [byCount.row(), byCount.row(), byCount.row(), byCount.row()]);
    assert.equal(kinds(outcomes), ['created', 'created', 'over_cap', 'over_cap']);
    assert.equal(outcomes[2], { kind: 'over_cap', unfinished: 2, unfinishedCost: 2 * COST });
    assert.is(await rowsOf(db, byCount.id), 2);

    // Budget 400: 160 fits, a 320 would pass it, the next 160 still fits.
    const byCost = await newKey(db, 1000, 2 * COST + 80);
    const costly = { ...params, num_inference_steps: 40 };
    const other = await newKey(db);
    const mixed = await insertGenerations(db, [byCost.row(), byCost.row({ params: costly }), other.row(), byCost.row()]);
    assert.equal(kinds(mixed), ['created', 'over_cap', 'created', 'created']);
    assert.equal(mixed[1], { kind: 'over_cap', unfinished: 1, unfinishedCost: COST });
    assert.equal([await counted(db, byCost.id), await counted(db, other.id)], [2, 1]);
  });

  it('a row the database refuses fails alone; the rest of its batch is committed', async ({ db }) => {
    const k = await newKey(db);
    const { held, batches, release, firstStarted } = heldDb(db);
    const inserter = groupCommit(held, { maxInFlight: 1 });
    const first = inserter.insert(k.row());
    await firstStarted;
    // webhook_url is at most 2048 characters (migration 005): a CHECK the whole statement would fail.
    const tooLong = k.row({ webhook: { url: `https://example.com/${'x'.repeat(3000)}`, events: ['completed'] } });
    const batch = [inserter.insert(k.row()), inserter.insert(tooLong), inserter.insert(k.row())];
    release();
    const settled = await Promise.allSettled([first, ...batch]);
    assert.equal(settled.map((s) => (s.status === 'fulfilled' ? s.value.kind : 'rejected')), ['created', 'created', 'rejected', 'created']);
    assert.is(((settled[2] as PromiseRejectedResult).reason as { code?: string }).code, '23514');
    assert.equal(batches, [1, 3, 1, 1, 1], 'the refused statement, then each of its rows alone');
    assert.equal([await rowsOf(db, k.id), await outboxOf(db, k.id), await counted(db, k.id)], [3, 3, 3]);
  });

  it('the cap is exact under 64 concurrent submits of one key, each its own statement', async ({ db }) => {
    const k = await newKey(db, 10);
    const outcomes = await Promise.all(Array.from({ length: 64 }, () => insertGenerations(db, [k.row()])));
    assert.is(outcomes.filter(([o]) => o!.kind === 'created').length, 10);
    assert.is(await rowsOf(db, k.id), 10);
    assert.is(await counted(db, k.id), 10);
  });

  it('the cap is exact under 64 concurrent submits through the group commit', async ({ db }) => {
    const k = await newKey(db, 10);
    const inserter = groupCommit(db);
    const outcomes = await Promise.all(Array.from({ length: 64 }, () => inserter.insert(k.row())));
    assert.is(outcomes.filter((o) => o.kind === 'created').length, 10);
    assert.is(outcomes.filter((o) => o.kind === 'over_cap').length, 54);
    assert.is(await rowsOf(db, k.id), 10);
  });

  it.run();
}
