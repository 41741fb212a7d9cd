// The pipelined worker (docs/architecture.md, decision 19) with a prefetch of 2 against a real
// gateway: the next job is claimed and its prompt encoded while a generation holds the model, the
// UNet never runs two generations at once, a waiting claim keeps its lease, a cancel of the waiting
// job is heard before it runs, and a stopping runner hands the waiting job back at once. Every
// interleaving is forced by gates on events; the timers only bound a wait that would otherwise
// hang without the behaviour under test.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Generation } from '../../src/store/generation.ts';
import { getGeneration } from '../../src/store/sql/getGeneration.ts';
import type { Claim, GatewayClient, ReportResult } from '../../src/runner/gateway-client.ts';
import type { Model } from '../../src/runner/pipeline/model.ts';
import { txt2img } from '../../src/runner/pipeline/txt2img.ts';
import { watchChanges } from '../helpers/changes.ts';
import type { TestGateway } from '../helpers/gateway.ts';
import { submit } from '../helpers/submit.ts';
import { forId, jobCount, startRig, tinyModel, type Rig } from './rig.ts';

const it = suite<{ dir: string; model: Model }>('pipelined worker');

it.before(async (ctx) => {
  ctx.dir = await fs.mkdtemp(path.join(os.tmpdir(), 'itemgen-pipelined-'));
  ctx.model = await tinyModel(path.join(ctx.dir, 'model'));
});
it.after(({ dir }) => fs.rm(dir, { recursive: true, force: true }));

const request = { prompt: 'a glowing sword', width: 256, height: 256, num_inference_steps: 4 };
const pipelined = { prefetch: 2 };

function deferred<T = void>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** Whether `promise` settles within `ms` (a bound on a wait, never a synchronization). */
const within = (promise: Promise<unknown>, ms: number) =>
  Promise.race([promise.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), ms).unref())]);

async function until(t: TestGateway, id: string, done: (g: Generation) => boolean): Promise<Generation> {
  for (;;) {
    const watch = await watchChanges(t.gw.db, id);
    const g = (await getGeneration(t.gw.db, id))!;
    if (done(g)) return g;
    await watch.changed;
  }
}

/** The model with a hook after each text-encoder run and before each UNet run, counting both and the UNet runs at once. */
function hookedModel(model: Model, hooks: { afterTextEncoder?: (call: number) => void; beforeUnet?: (call: number) => Promise<void> | void } = {}) {
  const counts = { text: 0, unet: 0, unetRunning: 0, unetMost: 0 };
  const wrap = (session: Model['unet']['session'], run: (feeds: Parameters<typeof session.run>[0]) => Promise<unknown>) =>
    Object.create(session, { run: { value: run } }) as typeof session;
  const te = model.textEncoder.session;
  const unet = model.unet.session;
  const textEncoder = wrap(te, async (feeds) => {
    const out = await te.run(feeds);
    counts.text += 1;
    hooks.afterTextEncoder?.(counts.text);
    return out;
  });
  const unetSession = wrap(unet, async (feeds) => {
    counts.unet += 1;
    await hooks.beforeUnet?.(counts.unet);
    counts.unetMost = Math.max(counts.unetMost, ++counts.unetRunning);
    try {
      return await unet.run(feeds);
    } finally {
      counts.unetRunning--;
    }
  });
  return {
    model: { ...model, textEncoder: { ...model.textEncoder, session: textEncoder }, unet: { ...model.unet, session: unetSession } } as Model,
    counts,
  };
}

/** A gateway client wrapper that resolves `claims[n]` with the n-th granted claim (0-based). */
function claimsSeen(n: number) {
  const claims = Array.from({ length: n }, () => deferred<Claim>());
  let granted = 0;
  return {
    claims,
    wrap: (inner: GatewayClient): GatewayClient => ({
      ...inner,
      async claim(id, runnerId, options) {
        const answer = await inner.claim(id, runnerId, options);
        if (answer.ok) claims[granted++]?.resolve(answer.claim);
        return answer;
      },
    }),
  };
}

it('the next job is claimed and its prompt encoded while one generates; the UNet runs one generation at a time', async (ctx) => {
  const calibrate = hookedModel(ctx.model);
  await txt2img(calibrate.model, { ...request, negative_prompt: '', guidance_scale: 7.5, seed: 1, scheduler: 'ddim', num_images: 1 });
  const textPerJob = calibrate.counts.text;
  const bothEncoded = deferred();
  let encodedMeanwhile: boolean | null = null;
  const hooked = hookedModel(ctx.model, {
    afterTextEncoder: (call) => {
      if (call === 2 * textPerJob) bothEncoded.resolve();
    },
    // The first generation's first step waits for the second job's prompt: it must be encoded while this one holds the model.
    beforeUnet: async (call) => {
      if (call === 1) encodedMeanwhile = await within(bothEncoded.promise, 10_000);
    },
  });
  const rig = await startRig(ctx, { model: () => hooked.model, worker: pipelined });
  try {
    const ids = [await submit(rig.t, request), await submit(rig.t, request)];
    const done = await Promise.all(ids.map((id) => until(rig.t, id, (g) => g.status !== 'pending' && g.status !== 'processing')));
    assert.equal(done.map((g) => [g.status, g.attempts]), [['completed', 1], ['completed', 1]]);
    assert.is(encodedMeanwhile, true, "the second prompt was encoded while the first generation's step waited");
    assert.is(hooked.counts.unet, 2 * request.num_inference_steps);
    assert.is(hooked.counts.unetMost, 1, 'never two UNet runs at once');
    for (const id of ids) assert.is((await rig.settlements.next(forId(id))).action, 'ack');
    assert.ok(rig.worker.modelBusyMs() > 0);
    assert.match(await rig.metrics.registry.metrics(), /itemgen_runner_model_busy_seconds_total \d/);
  } finally {
    await rig.stop();
  }
});

it('a claimed job waiting for the model keeps its lease with step-0 reports', async (ctx) => {
  const seen = claimsSeen(2);
  const renewed = deferred<{ id: string; lease: Date }>();
  let rig!: Rig;
  let renewedInTime: boolean | null = null;
  const hooked = hookedModel(ctx.model, {
    // The first generation holds the model until the waiting job's lease was renewed.
    beforeUnet: async (call) => {
      if (call === 1) renewedInTime = await within(renewed.promise, 15_000);
    },
  });
  rig = await startRig(ctx, {
    model: () => hooked.model,
    worker: pipelined,
    // The shortest lease the gateway takes: a report every 5/3 s.
    gatewayEnv: { LEASE_SECONDS: '5' },
    gateway: (inner) => ({
      ...seen.wrap(inner),
      async progress(id, attempt, step, total, options) {
        const answer = await inner.progress(id, attempt, step, total, options);
        if (step === 0 && answer.ok) renewed.resolve({ id, lease: (await getGeneration(rig.t.gw.db, id))!.leaseExpiresAt! });
        return answer;
      },
    }),
  });
  try {
    const first = await submit(rig.t, request);
    await seen.claims[0]!.promise;
    const second = await submit(rig.t, request);
    const waitingClaim = await seen.claims[1]!.promise;
    assert.is(waitingClaim.id, second);
    const done = await Promise.all([first, second].map((id) => until(rig.t, id, (g) => g.status !== 'pending' && g.status !== 'processing')));
    assert.is(renewedInTime, true, 'a step-0 report within 3 leases');
    const { id, lease } = await renewed.promise;
    assert.is(id, second);
    assert.ok(lease.getTime() > waitingClaim.leaseExpiresAt.getTime(), 'the lease was extended past the claim’s');
    assert.equal(done.map((g) => [g.status, g.attempts]), [['completed', 1], ['completed', 1]], 'never claimed again');
  } finally {
    await rig.stop();
  }
});

it('a cancel of the waiting job is heard before it runs: it never reaches the UNet, and the running one completes', async (ctx) => {
  const seen = claimsSeen(2);
  const canceled = deferred();
  const checked = deferred<ReportResult>();
  let checkedInTime: boolean | null = null;
  const hooked = hookedModel(ctx.model, {
    beforeUnet: async (call) => {
      if (call === 1) await canceled.promise;
      // The first generation's last step waits for the waiting job's last check, sent past its half.
      if (call === request.num_inference_steps) checkedInTime = await within(checked.promise, 10_000);
    },
  });
  const rig = await startRig(ctx, {
    model: () => hooked.model,
    worker: pipelined,
    gateway: (inner) => ({
      ...seen.wrap(inner),
      async progress(id, attempt, step, total, options) {
        const answer = await inner.progress(id, attempt, step, total, options);
        if (step === 0) checked.resolve(answer);
        return answer;
      },
    }),
  });
  try {
    const first = await submit(rig.t, request);
    await seen.claims[0]!.promise;
    const second = await submit(rig.t, request);
    await seen.claims[1]!.promise;
    assert.is((await rig.t.call('POST', `/v1/generations/${second}/cancel`)).status, 200);
    canceled.resolve();

    assert.is((await rig.settlements.next(forId(second))).action, 'ack');
    assert.is((await rig.settlements.next(forId(first))).action, 'ack');
    assert.is(checkedInTime, true);
    const answer = await checked.promise;
    assert.is(answer.ok ? 'ok' : answer.code, 'canceled');
    assert.is(hooked.counts.unet, request.num_inference_steps, 'only the first job ran on the UNet');
    assert.is((await getGeneration(rig.t.gw.db, second))!.status, 'canceled');
    assert.is((await getGeneration(rig.t.gw.db, first))!.status, 'completed');
    assert.is(await jobCount(rig.metrics, 'canceled'), 1);
    assert.is(await jobCount(rig.metrics, 'completed'), 1);
  } finally {
    await rig.stop();
  }
});

it('graceful stop hands the waiting job back at once (its lease given up) and lets the generating one finish', async (ctx) => {
  const seen = claimsSeen(2);
  const open = deferred();
  const released = deferred<string>();
  const hooked = hookedModel(ctx.model, {
    beforeUnet: async (call) => {
      if (call === 1) await open.promise;
    },
  });
  const rig = await startRig(ctx, {
    model: () => hooked.model,
    worker: pipelined,
    // A lease far longer than the test: the job is claimed again only because it was given up.
    gatewayEnv: { LEASE_SECONDS: '3600' },
    gateway: (inner) => ({
      ...seen.wrap(inner),
      async release(id, attempt, options) {
        const answer = await inner.release(id, attempt, options);
        released.resolve(id);
        return answer;
      },
    }),
  });
  try {
    const first = await submit(rig.t, request);
    await seen.claims[0]!.promise;
    const second = await submit(rig.t, request);
    await seen.claims[1]!.promise;
    const stopping = rig.worker.stop(60_000);
    assert.ok(await within(released.promise, 10_000), 'released while the first job still holds the model');
    assert.is(await released.promise, second);
    const handedBack = (await getGeneration(rig.t.gw.db, second))!;
    assert.is(handedBack.status, 'processing');
    assert.ok(handedBack.leaseExpiresAt!.getTime() <= Date.now(), 'the lease was given up');
    assert.is((await getGeneration(rig.t.gw.db, first))!.status, 'processing', 'while the first still generates');

    open.resolve();
    await stopping;
    assert.is((await getGeneration(rig.t.gw.db, first))!.status, 'completed');
    assert.is((await rig.settlements.next(forId(second))).action, 'requeue');
    assert.is(await jobCount(rig.metrics, 'requeued'), 1);
    assert.is(await jobCount(rig.metrics, 'completed'), 1);

    await rig.startWorker().started;
    const done = await until(rig.t, second, (g) => g.status === 'completed');
    assert.is(done.attempts, 2, 'claimed once more at once');
    assert.is(hooked.counts.unet, 2 * request.num_inference_steps);
  } finally {
    open.resolve();
    await rig.stop();
  }
});

it.run();
