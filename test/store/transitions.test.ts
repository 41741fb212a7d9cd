// The state machine in SQL, on real PostgreSQL and on PGlite: every transition applies only from
// its allowed states, and terminal states never change.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { GenerationParams } from '../../src/core/request.ts';
import { CHANGES_CHANNEL } from '../../src/gateway/changes.ts';
import { openDb } from '../../src/store/openDb.ts';
import type { Db } from '../../src/store/types.ts';
import { migrate } from '../../src/store/migrate.ts';
import { ANONYMOUS_KEY_ID } from '../../src/store/apiKey.ts';
import { cancelGeneration } from '../../src/store/sql/cancelGeneration.ts';
import { claimGeneration } from '../../src/store/sql/claimGeneration.ts';
import { completeGeneration } from '../../src/store/sql/completeGeneration.ts';
import { failGeneration } from '../../src/store/sql/failGeneration.ts';
import { getGeneration } from '../../src/store/sql/getGeneration.ts';
import { insertGeneration } from '../../src/store/sql/insertGeneration.ts';
import { listGenerations } from '../../src/store/sql/listGenerations.ts';
import { clearOutbox } from '../../src/store/sql/clearOutbox.ts';
import { leaseOutbox } from '../../src/store/sql/leaseOutbox.ts';
import { releaseOutbox } from '../../src/store/sql/releaseOutbox.ts';
import { countOutbox } from '../helpers/store.ts';
import { redispatchExpiredLeases } from '../../src/store/sql/redispatchExpiredLeases.ts';
import { releaseGeneration } from '../../src/store/sql/releaseGeneration.ts';
import { reportProgress } from '../../src/store/sql/reportProgress.ts';
import { DATABASE_URL, uniqueName } from '../helpers/services.ts';

const params: GenerationParams = {
  prompt: 'a lantern',
  negative_prompt: '',
  num_inference_steps: 20,
  guidance_scale: 7.5,
  seed: 4_294_967_295,
  width: 512,
  height: 512,
  scheduler: 'ddim',
  num_images: 1,
};

for (const backend of ['postgres', 'pglite'] as const) {
  const it = suite<{ db: Db; cleanup: () => Promise<void> }>(`store on ${backend}`);
  const insert = (db: Db, extra: Partial<Parameters<typeof insertGeneration>[1]> = {}) =>
    insertGeneration(db, { apiKeyId: ANONYMOUS_KEY_ID, maxUnfinished: 1000, maxUnfinishedCost: 1e9, idempotencyKey: null, requestHash: null, params, ...extra });

  it.before(async (ctx) => {
    if (backend === 'postgres') {
      const schema = uniqueName('itemgen_store');
      ctx.db = await openDb({ databaseUrl: DATABASE_URL, dataDir: '', poolSize: 8, schema });
      ctx.cleanup = async () => {
        const sql = postgres(DATABASE_URL, { max: 1, onnotice: () => {} });
        await sql.unsafe(`DROP SCHEMA "${schema}" CASCADE`);
        await sql.end();
      };
    } else {
      const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'itemgen-pglite-'));
      ctx.db = await openDb({ databaseUrl: undefined, dataDir: dir, poolSize: 1 });
      ctx.cleanup = () => fs.rm(dir, { recursive: true, force: true });
    }
    const files = (await fs.readdir(path.join(import.meta.dirname, '../../src/store/migrations'))).filter((f) => f.endsWith('.sql')).sort();
    assert.equal(await migrate(ctx.db), files);
    assert.equal(await migrate(ctx.db), [], 'migrations apply once');
  });
  it.after(async (ctx) => {
    await ctx.db.close();
    await ctx.cleanup();
  });

  it('insert keeps the parameters, including a seed above 2^31', async ({ db }) => {
    const g = await insert(db);
    assert.ok(g);
    assert.is(g.status, 'pending');
    assert.equal(g.params, params);
    assert.is(g.totalSteps, 20);
    const read = await getGeneration(db, g.id);
    assert.equal(read?.params.seed, 4_294_967_295);
  });

  it('claim → progress → complete, with the claim attempt checked at each step', async ({ db }) => {
    const g = (await insert(db))!;
    const claimed = await claimGeneration(db, g.id, 'runner-a', 60);
    assert.is(claimed?.status, 'processing');
    assert.is(claimed?.attempts, 1);
    assert.ok(claimed?.startedAt);
    assert.is(await claimGeneration(db, g.id, 'runner-b', 60), null, 'a live claim cannot be taken');
    assert.is(await reportProgress(db, g.id, 2, 3, 20, 60), null, 'wrong attempt');
    const p = await reportProgress(db, g.id, 1, 3, 20, 60);
    assert.is(p?.step, 3);
    assert.ok(p!.version > claimed!.version);
    const done = await completeGeneration(db, g.id, 1, [{ key: `generated/${g.id}/0.png` }]);
    assert.is(done?.status, 'completed');
    assert.is(done?.step, 20);
    assert.ok(done?.finishedAt);
    assert.equal(done?.images, [{ key: `generated/${g.id}/0.png` }]);
  });

  it('terminal states never change', async ({ db }) => {
    const done = (await insert(db))!;
    await claimGeneration(db, done.id, 'r', 60);
    await completeGeneration(db, done.id, 1, [{ key: 'k' }]);
    const failed = (await insert(db))!;
    await failGeneration(db, failed.id, null, 'boom', 'it broke');
    const canceled = (await insert(db))!;
    await cancelGeneration(db, canceled.id, ANONYMOUS_KEY_ID);
    for (const g of [done, failed, canceled]) {
      const before = await getGeneration(db, g.id);
      assert.is(await claimGeneration(db, g.id, 'r', 0), null);
      assert.is(await reportProgress(db, g.id, 1, 1, 20, 60), null);
      assert.is(await completeGeneration(db, g.id, 1, [{ key: 'x' }]), null);
      assert.is(await failGeneration(db, g.id, null, 'x', 'x'), null);
      assert.is(await failGeneration(db, g.id, 1, 'x', 'x'), null);
      assert.is(await cancelGeneration(db, g.id, ANONYMOUS_KEY_ID), null);
      assert.equal(await getGeneration(db, g.id), before);
    }
  });

  it('a claim whose lease expired can be claimed again, and the old claim can no longer report', async ({ db }) => {
    const g = (await insert(db))!;
    assert.ok(await claimGeneration(db, g.id, 'runner-a', 0));
    await db.query('SELECT pg_sleep(0.01)');
    const again = await claimGeneration(db, g.id, 'runner-b', 60);
    assert.is(again?.attempts, 2);
    assert.is(again?.runnerId, 'runner-b');
    assert.is(await reportProgress(db, g.id, 1, 5, 20, 60), null, 'stale attempt');
    assert.is(await completeGeneration(db, g.id, 1, [{ key: 'x' }]), null, 'stale attempt');
    assert.is((await completeGeneration(db, g.id, 2, [{ key: 'x' }]))?.status, 'completed');
  });

  it('a released claim is claimed again at once, without a visible change; only the current attempt can release', async ({ db }) => {
    const g = (await insert(db))!;
    const claimed = (await claimGeneration(db, g.id, 'runner-a', 3600))!;
    assert.is(await claimGeneration(db, g.id, 'runner-b', 60), null, 'a live lease holds');
    assert.is(await releaseGeneration(db, g.id, 2), false, 'not the current attempt');
    assert.is(await releaseGeneration(db, g.id, 1), true);
    const released = (await getGeneration(db, g.id))!;
    assert.is(released.status, 'processing');
    assert.is(released.version, claimed.version, 'no version change: nothing for clients to see');
    const again = await claimGeneration(db, g.id, 'runner-b', 60);
    assert.is(again?.attempts, 2);
    assert.is(again?.runnerId, 'runner-b');
    assert.is(await releaseGeneration(db, g.id, 1), false, 'the old attempt no longer holds anything');
    assert.ok(await completeGeneration(db, g.id, 2, [{ key: 'x' }]));
    assert.is(await releaseGeneration(db, g.id, 2), false, 'a finished generation has no lease to give up');
  });

  it('concurrent claims of one generation: exactly one wins', async ({ db }) => {
    for (let round = 0; round < 5; round++) {
      const g = (await insert(db))!;
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) => claimGeneration(db, g.id, `runner-${i}`, 60)),
      );
      assert.is(results.filter(Boolean).length, 1);
      assert.is((await getGeneration(db, g.id))?.attempts, 1);
    }
  });

  it('cancel applies to pending and processing, only for the owner', async ({ db }) => {
    const pending = (await insert(db))!;
    assert.is(await cancelGeneration(db, pending.id, '11111111-1111-1111-1111-111111111111'), null);
    assert.is((await cancelGeneration(db, pending.id, ANONYMOUS_KEY_ID))?.status, 'canceled');
    const running = (await insert(db))!;
    await claimGeneration(db, running.id, 'r', 60);
    assert.is((await cancelGeneration(db, running.id, ANONYMOUS_KEY_ID))?.status, 'canceled');
    assert.is(await reportProgress(db, running.id, 1, 2, 20, 60), null, 'runner learns at next report');
  });

  it('cap on unfinished generations and idempotency keys', async ({ db }) => {
    await db.query(`UPDATE generations SET status = 'failed' WHERE status IN ('pending', 'processing')`);
    const capped = (k: string | null) => insert(db, { maxUnfinished: 2, idempotencyKey: k, requestHash: k && 'h' });
    assert.ok(await capped(null));
    assert.ok(await capped('key-1'));
    assert.is(await capped(null), null, 'third unfinished refused');
    await db.query(`UPDATE generations SET status = 'failed' WHERE status = 'pending'`);
    assert.is(await capped('key-1'), null, 'same idempotency key refused');
    assert.ok(await capped('key-2'));
  });

  it('queue position, listing and dispatch follow submission order', async ({ db }) => {
    await db.query(`UPDATE generations SET status = 'failed' WHERE status IN ('pending', 'processing')`);
    await db.query('DELETE FROM dispatch_outbox');
    const a = (await insert(db))!;
    const b = (await insert(db))!;
    const c = (await insert(db))!;
    assert.is((await getGeneration(db, a.id))?.queuePosition, 0);
    assert.is((await getGeneration(db, c.id))?.queuePosition, 2);
    await claimGeneration(db, a.id, 'r', 60);
    assert.is((await getGeneration(db, c.id))?.queuePosition, 1);
    assert.is((await getGeneration(db, a.id))?.queuePosition, null);

    const page = await listGenerations(db, { apiKeyId: ANONYMOUS_KEY_ID, limit: 2 });
    assert.equal(page.map((g) => g.id), [c.id, b.id]);
    const next = await listGenerations(db, { apiKeyId: ANONYMOUS_KEY_ID, limit: 2, beforeSeq: b.seq });
    assert.is(next[0]?.id, a.id);
    const onlyProcessing = await listGenerations(db, { apiKeyId: ANONYMOUS_KEY_ID, limit: 10, status: 'processing' });
    assert.equal(onlyProcessing.map((g) => g.id), [a.id]);

    await cancelGeneration(db, b.id, ANONYMOUS_KEY_ID);
    assert.is(await countOutbox(db), 3, 'every insert wrote its outbox row');
    assert.equal(await leaseOutbox(db, 10, 30, 60), [], 'younger than the minimum age');
    const batch = await leaseOutbox(db, 10, 30, 0);
    assert.equal(batch.map((x) => [x.id, x.status]), [[a.id, 'processing'], [b.id, 'canceled'], [c.id, 'pending']], 'oldest first');
    assert.equal(batch[2]!.params, params);
    assert.equal(await leaseOutbox(db, 10, 30, 0), [], 'a leased batch is not handed out twice');
    await releaseOutbox(db, [c.id]);
    assert.equal((await leaseOutbox(db, 10, 30, 0)).map((x) => x.id), [c.id], 'released entries can be leased again');
    await clearOutbox(db, [a.id, b.id, c.id]);
    assert.is(await countOutbox(db), 0);
  });

  it('a processing job whose lease ran out is dispatched again, once per claim; live and released leases are not', async ({ db }) => {
    await clearOutbox(db, (await leaseOutbox(db, 1000, 30, 0)).map((e) => e.id));
    const lost = (await insert(db))!;
    const live = (await insert(db))!;
    const released = (await insert(db))!;
    const pending = (await insert(db))!;
    await clearOutbox(db, [lost.id, live.id, released.id, pending.id]);
    // A negative lease is one that ran out already (the runner's last heartbeat was long ago).
    await claimGeneration(db, lost.id, 'killed', -1);
    await claimGeneration(db, live.id, 'working', 60);
    await claimGeneration(db, released.id, 'stopping', 60);
    assert.ok(await releaseGeneration(db, released.id, 1));

    assert.equal(await redispatchExpiredLeases(db, 100), [lost.id]);
    assert.equal(await redispatchExpiredLeases(db, 100), [], 'once per claim, however often the sweep runs');
    assert.equal((await leaseOutbox(db, 10, 30, 0)).map((e) => [e.id, e.status]), [[lost.id, 'processing']]);
    await clearOutbox(db, [lost.id]);

    const again = await claimGeneration(db, lost.id, 'second', -1);
    assert.is(again?.attempts, 2, 'the expired claim can be taken');
    assert.equal(await redispatchExpiredLeases(db, 100), [lost.id], 'a new claim that is lost too is dispatched again');
    await completeGeneration(db, lost.id, 2, [{ key: 'k' }]);
    await clearOutbox(db, [lost.id]);
    assert.equal(await redispatchExpiredLeases(db, 100), []);
  });

  it('the unfinished count per key follows inserts and terminal transitions', async ({ db }) => {
    const usage = async () =>
      Number((await db.query('SELECT coalesce(sum(unfinished), 0) AS n FROM api_key_usage WHERE api_key_id = $1', [ANONYMOUS_KEY_ID]))[0]!.n);
    const actual = async () =>
      Number((await db.query(`SELECT count(*) AS n FROM generations WHERE status IN ('pending', 'processing')`))[0]!.n);
    const g = (await insert(db))!;
    const h = (await insert(db))!;
    assert.is(await usage(), await actual());
    await claimGeneration(db, g.id, 'r', 60);
    await reportProgress(db, g.id, 1, 1, 20, 60);
    assert.is(await usage(), await actual(), 'claim and progress keep it');
    await completeGeneration(db, g.id, 1, [{ key: 'k' }]);
    await cancelGeneration(db, h.id, ANONYMOUS_KEY_ID);
    assert.is(await usage(), await actual(), 'terminal transitions lower it');
  });

  it('every versioned change is announced on the change channel', async ({ db }) => {
    const g = (await insert(db))!;
    const seen: string[] = [];
    let notify: () => void = () => {};
    const stop = await db.listen(CHANGES_CHANNEL, (payload) => {
      if (payload.startsWith(g.id)) {
        seen.push(payload);
        notify();
      }
    });
    const arrived = new Promise<void>((resolve) => (notify = resolve));
    const claimed = await claimGeneration(db, g.id, 'r', 60);
    await arrived;
    await stop();
    assert.equal(seen, [`${g.id} ${claimed!.version} ${ANONYMOUS_KEY_ID}`]);
  });

  it.run();
}
