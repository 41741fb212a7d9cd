// The runner's worker against a real gateway (PostgreSQL, RabbitMQ or the in-process queue), the
// tiny model and a local image folder: the whole path, poison messages, cancellation, duplicate
// deliveries, storage faults and shutdown. Steps of the tiny model take under a millisecond, so
// every interleaving a test depends on is forced by gates on events, never by timing.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import amqp from 'amqplib';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeJobMessage } from '../../src/core/message.ts';
import { topologyFor } from '../../src/queue/rabbitmq.ts';
import { createLocalImageStore } from '../../src/storage/local.ts';
import type { Generation } from '../../src/store/generation.ts';
import { getGeneration } from '../../src/store/sql/getGeneration.ts';
import { parseRunnerConfig } from '../../src/runner/config.ts';
import { type Clock } from '../../src/core/retry.ts';
import { createGatewayClient, GatewayUnavailableError, type ReportResult } from '../../src/runner/gateway-client.ts';
import { createRunnerMetrics } from '../../src/runner/metrics.ts';
import type { Model } from '../../src/runner/pipeline/model.ts';
import { decodePng } from '../../src/runner/pipeline/png.ts';
import { startRunner } from '../../src/runner/service.ts';
import { startWorker, type Worker } from '../../src/runner/worker.ts';
import { watchChanges } from '../helpers/changes.ts';
import { RUNNER_TOKEN, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { AMQP_URL } from '../helpers/services.ts';
import { recordingLogger } from '../helpers/log.ts';
import { readSse } from '../helpers/sse.ts';
import { submit } from '../helpers/submit.ts';
import { forId, jobCount, observeSettlements, startRig, testGatewayClient, testLog, testWorkerOptions, tinyModel } from './rig.ts';

const it = suite<{ dir: string; modelDir: string; model: Model }>('runner worker');

it.before(async (ctx) => {
  ctx.dir = await fs.mkdtemp(path.join(os.tmpdir(), 'itemgen-runner-'));
  ctx.modelDir = path.join(ctx.dir, 'model');
  ctx.model = await tinyModel(ctx.modelDir);
});
it.after(({ dir }) => fs.rm(dir, { recursive: true, force: true }));

const request = { prompt: 'a glowing sword', width: 256, height: 256, num_inference_steps: 4 };

/** The generation once `done` holds for it, waiting on the gateway's change notifications. */
async function until(t: TestGateway, id: string, done: (g: Generation) => boolean): Promise<Generation> {
  for (;;) {
    const watch = await watchChanges(t.gw.db, id);
    const g = (await getGeneration(t.gw.db, id))!;
    if (done(g)) return g;
    await watch.changed;
  }
}

async function storedFiles(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => path.relative(dir, path.join(e.parentPath, e.name)).split(path.sep).join('/')).sort();
}

function deferred<T = void>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** The model with every UNet call first waiting for `gate(call number)`. */
function gatedModel(model: Model, gate: (call: number) => Promise<void> | void) {
  let calls = 0;
  const session = model.unet.session;
  const unetSession = Object.create(session, {
    run: {
      value: async (feeds: Parameters<typeof session.run>[0]) => {
        calls += 1;
        await gate(calls);
        return session.run(feeds);
      },
    },
  });
  return { model: { ...model, unet: { ...model.unet, session: unetSession } } as Model, calls: () => calls };
}

it('the full path: submit → message → claim → progress → images stored → completed with their keys', async (ctx) => {
  const rig = await startRig(ctx);
  try {
    const id = await submit(rig.t, { ...request, num_images: 2 });
    const events: { event: string; data: any }[] = [];
    for await (const e of readSse(await rig.t.call('GET', `/v1/generations/${id}/events`))) events.push({ event: e.event, data: JSON.parse(e.data) });

    const last = events.at(-1)!.data;
    assert.is(last.status, 'completed');
    assert.equal(last.progress, { step: 4, total: 4 });
    assert.ok(events.some((e) => e.event === 'progress' && e.data.progress.step === 4), 'the last step was reported');
    assert.is(last.images.length, 2);

    const g = (await getGeneration(rig.t.gw.db, id))!;
    const seed = g.params.seed;
    assert.equal(g.images, [{ key: `generated/${id}/0.png`, seed }, { key: `generated/${id}/1.png`, seed: (seed + 1) % 2 ** 32 }]);
    // What ran, as the runner reported it and the API shows it.
    assert.equal(last.ran, {
      prompt: `tsuki_advtr, ${request.prompt}`,
      negative_prompt: 'blurry, low quality',
      model: { name: path.basename(ctx.model.dir), hash: ctx.model.hash },
      execution_provider: 'cpu',
    });
    assert.equal(last.images.map((i: any) => i.seed), [seed, (seed + 1) % 2 ** 32]);
    assert.equal(Object.keys(last.timings).sort(), ['claim_ms', 'decode_ms', 'denoising_ms', 'png_ms', 'queued_ms', 'text_encoder_ms', 'upload_ms']);
    for (const [k, v] of Object.entries(last.timings)) assert.ok(typeof v === 'number' && v >= 0, `${k}: ${v}`);
    assert.is(g.attempts, 1);
    assert.equal(await storedFiles(rig.imagesDir), [`generated/${id}/0.png`, `generated/${id}/1.png`]);
    const png = decodePng(await fs.readFile(path.join(rig.imagesDir, 'generated', id, '1.png')));
    assert.is(png.width, 256);
    assert.is(png.height, 256);
    assert.match(png.texts.parameters!, /Steps: 4, Sampler: DDIM/);

    assert.is((await rig.settlements.next(forId(id))).action, 'ack');
    assert.is(await jobCount(rig.metrics, 'completed'), 1);
    const metricsText = await rig.metrics.registry.metrics();
    for (const name of ['itemgen_runner_queue_wait_seconds_count 1', 'itemgen_runner_claim_seconds_count 1', 'itemgen_runner_generation_seconds_count 1', 'itemgen_runner_upload_seconds_count 1', 'itemgen_runner_step_seconds_count 4']) {
      assert.ok(metricsText.includes(name), name);
    }
  } finally {
    await rig.stop();
  }
});

it('live previews: a real generation sends a preview from its first step, linked while processing and gone once completed', async (ctx) => {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  // Reports after one that carried a preview wait until the test has seen it, so the generation cannot finish first.
  const rig = await startRig(ctx, {
    gateway: (inner) => ({
      ...inner,
      async progress(id, attempt, step, total, options) {
        const answer = await inner.progress(id, attempt, step, total, options);
        if (options?.preview) await gate;
        return answer;
      },
    }),
  });
  try {
    const id = await submit(rig.t, { ...request, num_inference_steps: 20 });
    const stream = readSse(await rig.t.call('GET', `/v1/generations/${id}/events`));
    let preview: any;
    while (!preview) {
      const e = (await stream.next()).value!;
      if (e.event === 'preview') preview = JSON.parse(e.data);
    }
    assert.is(preview.id, id);
    assert.is(preview.step, 1, 'the first step always has one');
    const png = decodePng(Buffer.from(preview.url.replace(/^data:image\/png;base64,/, ''), 'base64'));
    assert.equal([png.width, png.height], [32, 32], 'latent resolution: an eighth of 256');
    const view = (await (await rig.t.call('GET', `/v1/generations/${id}`)).json()) as any;
    assert.is(view.status, 'processing');
    assert.equal(view.preview, { step: 1, url: `${rig.t.url}/v1/generations/${id}/preview` });
    const served = await rig.t.call('GET', `/v1/generations/${id}/preview`);
    assert.is(served.status, 200);
    assert.ok(Buffer.from(await served.arrayBuffer()).equals(Buffer.from(preview.url.split(',')[1], 'base64')));

    open();
    let last: any;
    for (let e = await stream.next(); !e.done; e = await stream.next()) if (e.value.event !== 'preview') last = JSON.parse(e.value.data);
    assert.is(last.status, 'completed');
    assert.is(last.preview, undefined);
    assert.is((await rig.t.call('GET', `/v1/generations/${id}/preview`)).status, 404);
  } finally {
    open();
    await rig.stop();
  }
});

it('PLMS: the progress total is the number of UNet evaluations from the submit on, and the step reaches it', async (ctx) => {
  const rig = await startRig(ctx, { broker: 'memory' });
  try {
    const res = await rig.t.call('POST', '/v1/generations', { body: { ...request, scheduler: 'pndm', num_inference_steps: 3 } });
    const submitted = (await res.json()) as any;
    assert.equal(submitted.progress, { step: 0, total: 4 });
    const totals = new Set<number>();
    let last: any;
    for await (const e of readSse(await rig.t.call('GET', `/v1/generations/${submitted.id}/events`))) {
      if (e.event === 'preview') continue;
      last = JSON.parse(e.data);
      totals.add(last.progress.total);
    }
    assert.is(last.status, 'completed');
    assert.equal(last.progress, { step: 4, total: 4 });
    assert.equal([...totals], [4], 'the total never changes on the way');
  } finally {
    await rig.stop();
  }
});

it('what a request asks beyond the model fails at once, without a retry or a stack trace: steps past its LCM schedule, memory', async (ctx) => {
  const log = recordingLogger();
  const lcmOf10 = { ...ctx.model, schedulerConfig: { ...ctx.model.schedulerConfig, original_inference_steps: 10 } } as Model;
  const outOfMemory = gatedModel(ctx.model, () => {
    throw new Error('Failed to allocate memory for requested buffer of size 268435456');
  }).model;
  let model = lcmOf10;
  const rig = await startRig(ctx, { broker: 'memory', model: () => model, worker: { log } });
  try {
    const lcm = await submit(rig.t, { ...request, scheduler: 'lcm', num_inference_steps: 20 });
    const refused = await until(rig.t, lcm, (g) => g.status === 'failed');
    assert.is(refused.errorCode, 'invalid_parameters');
    assert.match(refused.errorMessage!, /num_inference_steps must be an integer in \[1, original_inference_steps = 10\], got 20/);

    model = outOfMemory;
    const big = await submit(rig.t, { ...request, num_images: 3 });
    const exhausted = await until(rig.t, big, (g) => g.status === 'failed');
    assert.is(exhausted.errorCode, 'resource_exhausted');
    assert.match(exhausted.errorMessage!, /ran out of memory for 3 image\(s\) of 256×256 \(a batch of 6 latents of 32×32, doubled by guidance\)/);

    for (const g of [refused, exhausted]) {
      assert.is(g.attempts, 1, 'claimed once: not retried');
      assert.not.match(g.errorMessage!, /\n\s+at /, 'no stack trace for the client');
      assert.is((await rig.settlements.next(forId(g.id))).action, 'ack');
    }
    assert.equal(log.at('error'), [], 'not errors of ours');
    const warned = log.at('warn').filter((e) => e.msg === 'generation refused by the pipeline');
    assert.equal(warned.map((e) => e.fields.code), ['invalid_parameters', 'resource_exhausted']);
    assert.not.ok(warned.some((e) => 'stack' in e.fields));
  } finally {
    await rig.stop();
  }
});

it('a poison message is dead-lettered and the worker keeps consuming', async (ctx) => {
  const rig = await startRig(ctx);
  try {
    // Published straight to the broker, once the gateway has declared the topology.
    await new Promise<void>((resolve) => rig.t.gw.queue.onConnected(resolve));
    const t = topologyFor(rig.t.prefix);
    const conn = await amqp.connect(AMQP_URL);
    const ch = await conn.createConfirmChannel();
    ch.publish(t.exchange, t.routingKey, Buffer.from('poison: not a job message'), { persistent: true });
    ch.publish(t.exchange, t.routingKey, Buffer.from(JSON.stringify({ v: 1, id: '7a1b5c2e-0000-4000-8000-000000000000', params: { prompt: '' } })));
    await ch.waitForConfirms();
    await conn.close();

    assert.is((await rig.settlements.next((s) => s.body.toString().startsWith('poison'))).action, 'reject');
    assert.is((await rig.settlements.next((s) => s.body.toString().includes('7a1b5c2e'))).action, 'reject');
    assert.is(await jobCount(rig.metrics, 'rejected'), 2);

    const id = await submit(rig.t, request);
    const g = await until(rig.t, id, (g) => g.status !== 'pending' && g.status !== 'processing');
    assert.is(g.status, 'completed');
    assert.is(rig.worker.state(), 'running');
  } finally {
    await rig.stop();
  }
});

it('cancel mid-generation: the worker stops before the next step, acks, and stores nothing', async (ctx) => {
  const answers = new Map<number, ReturnType<typeof deferred<ReportResult>>>();
  const answerFor = (step: number) => answers.get(step) ?? answers.set(step, deferred<ReportResult>()).get(step)!;
  const canceled = deferred();
  // Each UNet call waits for the previous step's progress answer (a model slower than a report),
  // and the second one also for the cancel: the worker must hear of it between steps.
  const gated = gatedModel(ctx.model, async (call) => {
    if (call === 1) return;
    await answerFor(call - 1).promise;
    if (call === 2) await canceled.promise;
  });
  let callsWhenStopped = 0;
  const rig = await startRig(ctx, {
    model: () => gated.model,
    worker: { progressIntervalMs: 0 },
    gateway: (inner) => ({
      ...inner,
      async progress(id, attempt, step, total, options) {
        const answer = await inner.progress(id, attempt, step, total, options);
        if (!answer.ok) callsWhenStopped = gated.calls();
        answerFor(step).resolve(answer);
        return answer;
      },
    }),
  });
  try {
    const id = await submit(rig.t, { ...request, num_inference_steps: 20 });
    const first = await answerFor(1).promise;
    assert.ok(first.ok);
    const res = await rig.t.call('POST', `/v1/generations/${id}/cancel`);
    assert.is(res.status, 200);
    canceled.resolve();

    assert.is((await rig.settlements.next(forId(id))).action, 'ack');
    const stop = await answerFor(2).promise;
    assert.is(stop.ok ? 'ok' : stop.code, 'canceled');
    assert.ok(gated.calls() <= callsWhenStopped, `no UNet step started after the stop (${gated.calls()} calls, ${callsWhenStopped} when told)`);
    assert.ok(gated.calls() < 20);
    const g = (await getGeneration(rig.t.gw.db, id))!;
    assert.is(g.status, 'canceled');
    assert.is(g.images, null);
    assert.equal(await storedFiles(rig.imagesDir), []);
    assert.is(await jobCount(rig.metrics, 'canceled'), 1);
  } finally {
    await rig.stop();
  }
});

it('a duplicate delivery of a completed job is acked and skipped', async (ctx) => {
  const rig = await startRig(ctx);
  try {
    const id = await submit(rig.t, request);
    const done = await until(rig.t, id, (g) => g.status === 'completed');
    const original = await rig.settlements.next(forId(id, 'ack'));

    await rig.t.gw.queue.publish([decodeJobMessage(original.body)]);
    await rig.settlements.next((s) => forId(id, 'ack')(s) && s !== original);
    assert.equal(rig.settlements.seen.filter(forId(id)).map((s) => s.action), ['ack', 'ack']);
    assert.is(await jobCount(rig.metrics, 'skipped'), 1);
    assert.is(await jobCount(rig.metrics, 'completed'), 1);
    const after = (await getGeneration(rig.t.gw.db, id))!;
    assert.is(after.attempts, 1);
    assert.equal(after.images, done.images);
    assert.is(after.finishedAt?.getTime(), done.finishedAt?.getTime());
  } finally {
    await rig.stop();
  }
});

it('an upload that fails, then recovers, is retried and the job completes', async (ctx) => {
  let puts = 0;
  const rig = await startRig(ctx, {
    store: (inner) => ({
      ...inner,
      async putImage(input) {
        puts += 1;
        if (puts <= 2) throw new Error('storage unavailable (simulated)');
        return inner.putImage(input);
      },
    }),
  });
  try {
    const id = await submit(rig.t, request);
    const g = await until(rig.t, id, (g) => g.status !== 'pending' && g.status !== 'processing');
    assert.is(g.status, 'completed');
    assert.is(puts, 3);
    assert.equal(await storedFiles(rig.imagesDir), [`generated/${id}/0.png`]);
    assert.is((await rig.metrics.uploadRetries.get()).values[0]!.value, 2);
  } finally {
    await rig.stop();
  }
});

it('an upload that keeps failing on the last attempt fails the job with too_many_attempts', async (ctx) => {
  const rig = await startRig(ctx, {
    store: (inner) => ({
      ...inner,
      putImage: async () => {
        throw new Error('bucket gone (simulated)');
      },
    }),
    worker: { maxAttempts: 1 },
  });
  try {
    const id = await submit(rig.t, request);
    const g = await until(rig.t, id, (g) => g.status === 'failed');
    assert.is(g.errorCode, 'too_many_attempts');
    assert.match(g.errorMessage!, /bucket gone/);
    assert.is((await rig.settlements.next(forId(id))).action, 'ack');
    assert.is(await jobCount(rig.metrics, 'failed'), 1);
  } finally {
    await rig.stop();
  }
});

it('a job another runner holds is dropped at once and the slot takes other work; if that runner is lost, the job is dispatched again', async (ctx) => {
  const rig = await startRig(ctx, { broker: 'memory', deferWorker: true });
  try {
    const held = await submit(rig.t, request);
    assert.is((await rig.t.runner(`/generations/${held}/claim`, { runner_id: 'other-runner' })).status, 200);
    await rig.startWorker().started;
    const dropped = await rig.settlements.next(forId(held));
    assert.equal([dropped.action, dropped.deliveryCount], ['ack', 1], 'acked, not held for the 60 s lease nor requeued');
    assert.is(await jobCount(rig.metrics, 'skipped'), 1);

    const next = await submit(rig.t, request);
    assert.is((await until(rig.t, next, (g) => g.status === 'completed')).attempts, 1, 'the one slot was free for it');

    // The other runner is lost: its lease runs out (as if its last heartbeat were a minute old).
    await rig.t.gw.db.query(`UPDATE generations SET lease_expires_at = now() - interval '1 minute' WHERE id = $1`, [held]);
    await rig.t.gw.dispatcher.drained();
    const done = await until(rig.t, held, (g) => g.status === 'completed');
    assert.is(done.attempts, 2, 'claimed once more, here');
    const redelivered = await rig.settlements.next((s) => forId(held)(s) && s !== dropped);
    assert.equal([redelivered.action, redelivered.deliveryCount], ['ack', 1], 'a fresh message: no delivery used up');
  } finally {
    await rig.stop();
  }
});

/** A fetch that holds the first progress report until released (or aborted). */
function holdFirstProgress() {
  const arrived = deferred();
  const release = deferred();
  let held = false;
  const holdingFetch: typeof fetch = async (input, init) => {
    if (!held && String(input).endsWith('/progress')) {
      held = true;
      arrived.resolve();
      await new Promise<void>((resolve, reject) => {
        void release.promise.then(resolve);
        init?.signal?.addEventListener('abort', () => reject(init.signal!.reason));
      });
    }
    return fetch(input, init);
  };
  return { fetch: holdingFetch, arrived: arrived.promise, release: release.resolve };
}

async function runnerEnv(ctx: { dir: string }, t: TestGateway, extra: Record<string, string> = {}) {
  return {
    RUNNER_TOKEN,
    GATEWAY_URL: t.url,
    AMQP_URL,
    AMQP_PREFIX: t.prefix,
    DATA_DIR: await fs.mkdtemp(path.join(ctx.dir, 'data-')),
    RUNNER_HEALTH_HOST: '127.0.0.1',
    RUNNER_HEALTH_PORT: '0',
    RUNNER_RETRY_ATTEMPTS: '3',
    RUNNER_ID: 'service-runner',
    EXECUTION_PROVIDER: 'cpu',
    ...extra,
  };
}

async function workQueueDepth(prefix: string): Promise<number> {
  const conn = await amqp.connect(AMQP_URL);
  try {
    const ch = await conn.createChannel();
    return (await ch.checkQueue(topologyFor(prefix).workQueue)).messageCount;
  } finally {
    await conn.close();
  }
}

it('graceful stop: /healthz turns 503, the current job finishes and is acked, then the runner closes', async (ctx) => {
  const t = await startTestGateway({ store: 'postgres', broker: 'rabbitmq' });
  const hold = holdFirstProgress();
  try {
    // No MODEL_DIR: the tiny model is generated into DATA_DIR on first start.
    const env = await runnerEnv(ctx, t);
    const runner = await startRunner(parseRunnerConfig(env), { fetch: hold.fetch, log: testLog });
    assert.is(runner.modelDir, path.join(env.DATA_DIR, 'tiny-model'));
    assert.is((await fetch(`${runner.healthUrl}/healthz`)).status, 200);

    const id = await submit(t, request);
    await hold.arrived;
    const closing = runner.close(60_000);
    const health = await fetch(`${runner.healthUrl}/healthz`);
    assert.is(health.status, 503);
    assert.equal(await health.json(), { status: 'stopping' });
    const metrics = await (await fetch(`${runner.healthUrl}/metrics`)).text();
    assert.match(metrics, /itemgen_runner_jobs_in_progress 1/);
    hold.release();
    await closing;

    const g = (await getGeneration(t.gw.db, id))!;
    assert.is(g.status, 'completed');
    assert.is(g.attempts, 1);
    assert.equal(await storedFiles(path.join(env.DATA_DIR, 'images')), [`generated/${id}/0.png`]);
    assert.is(await jobCount(runner.metrics, 'completed'), 1);
    assert.is(await workQueueDepth(t.prefix), 0, 'acked: nothing left to redeliver');
    assert.is(runner.worker.state(), 'stopped');
    await fetch(`${runner.healthUrl}/healthz`).then(
      () => assert.unreachable('the health server is closed'),
      () => {},
    );
  } finally {
    await t.stop();
  }
});

it('stop past the grace period hands the job back unacked and gives up its lease; another runner completes it at once', async (ctx) => {
  // A lease far longer than the test: the second runner claims only because the first gave it up.
  const t = await startTestGateway({ store: 'postgres', broker: 'rabbitmq', env: { LEASE_SECONDS: '3600' } });
  const hold = holdFirstProgress();
  let second: Worker | null = null;
  try {
    const env = await runnerEnv(ctx, t, { MODEL_DIR: ctx.modelDir });
    const runner = await startRunner(parseRunnerConfig(env), { fetch: hold.fetch, log: testLog });
    const id = await submit(t, request);
    await hold.arrived;
    await runner.close(0);
    assert.is(await jobCount(runner.metrics, 'requeued'), 1);
    const handedBack = (await getGeneration(t.gw.db, id))!;
    assert.is(handedBack.status, 'processing', 'no visible change');
    assert.ok(handedBack.leaseExpiresAt!.getTime() <= Date.now(), 'the lease was given up');

    const settlements = observeSettlements(t.gw.queue);
    const metrics = createRunnerMetrics();
    const store = createLocalImageStore(path.join(env.DATA_DIR, 'images'));
    second = startWorker(testWorkerOptions({ queue: settlements.queue, gateway: testGatewayClient(t), model: () => ctx.model, store, runnerId: 'second-runner', metrics }));
    const g = await until(t, id, (g) => g.status === 'completed');
    assert.is(g.attempts, 2);
    assert.is(g.runnerId, 'second-runner');
    assert.equal(await storedFiles(path.join(env.DATA_DIR, 'images')), [`generated/${id}/0.png`]);
    // The gateway has the completion before the worker has its answer: the count follows the ack.
    assert.is((await settlements.next(forId(id))).action, 'ack');
    assert.is(await jobCount(metrics, 'completed'), 1);
  } finally {
    await second?.stop(0);
    await t.stop();
  }
});

it.run();

// The internal API client alone, on scripted answers and a clock that only records the waits.
const client = suite('gateway client');

function scripted(answers: (Response | Error | 'hang')[]) {
  const calls: { url: string; body: unknown }[] = [];
  const scriptedFetch: typeof fetch = async (input, init) => {
    calls.push({ url: String(input), body: JSON.parse(String(init!.body)) });
    const answer = answers.shift()!;
    if (answer === 'hang') {
      // Holds the event loop open as a real socket would (the timeout's own timer does not).
      const socket = setInterval(() => {}, 1000);
      return new Promise<Response>((_, reject) =>
        init!.signal!.addEventListener('abort', () => {
          clearInterval(socket);
          reject(init!.signal!.reason);
        }),
      );
    }
    if (answer instanceof Error) throw answer;
    return answer;
  };
  const waits: number[] = [];
  let now = 0;
  const clock: Clock = {
    now: () => now,
    random: () => 0.5,
    sleep: async (ms) => {
      waits.push(ms);
      now += ms;
    },
  };
  return { fetch: scriptedFetch, calls, waits, clock };
}

const problem = (status: number, body: Record<string, unknown>, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify({ status, ...body }), { status, headers: { 'content-type': 'application/problem+json', ...headers } });
const policy = { attempts: 5, baseDelayMs: 100, maxDelayMs: 2000, maxElapsedMs: 10_000 };
const clientFor = (s: ReturnType<typeof scripted>, retry = policy, timeoutMs = 5000) =>
  createGatewayClient({ baseUrl: 'http://gateway.test/', token: RUNNER_TOKEN, timeoutMs, retry, fetch: s.fetch, clock: s.clock });
const ID = '0b7c4d52-5a8e-4a57-9d87-0c4c1a3f2e10';

client('network errors, 5xx and 429 are retried with full-jitter backoff (Retry-After as a floor); the answer after them counts', async () => {
  const params = { ...request, negative_prompt: '', guidance_scale: 7.5, seed: 7, scheduler: 'ddim', num_images: 1 };
  const s = scripted([
    new TypeError('fetch failed'),
    problem(503, { code: 'database_unavailable' }, { 'retry-after': '1' }),
    problem(429, { code: 'too_many_requests' }),
    Response.json({ id: ID, attempt: 2, params, lease_expires_at: '2030-01-01T00:00:00.000Z', lease_seconds: 60 }),
  ]);
  const result = await clientFor(s).claim(ID, 'r1');
  assert.ok(result.ok);
  assert.is(result.claim.attempt, 2);
  assert.equal(result.claim.params, params);
  assert.equal(s.waits, [50, 1000, 200], 'half of base·2ⁿ (random 0.5); the 503 asked for 1 s');
  assert.is(s.calls.length, 4);
  assert.is(s.calls[0]!.url, `http://gateway.test/internal/v1/generations/${ID}/claim`);
  assert.equal(s.calls[0]!.body, { runner_id: 'r1' });
});

client('retries are bounded in tries and in time, then GatewayUnavailableError', async () => {
  const always503 = () => Array.from({ length: 10 }, () => problem(503, { code: 'internal_error' }));
  const byTries = scripted(always503());
  const err = await clientFor(byTries).progress(ID, 1, 3, 10).catch((e: unknown) => e);
  assert.instance(err, GatewayUnavailableError);
  assert.match((err as Error).message, /progress after 5 tries/);
  assert.is(byTries.calls.length, 5);
  assert.equal(byTries.waits, [50, 100, 200, 400]);

  const byTime = scripted(always503());
  await clientFor(byTime, { ...policy, maxElapsedMs: 120 })
    .progress(ID, 1, 3, 10)
    .then(() => assert.unreachable(), (e: unknown) => assert.instance(e, GatewayUnavailableError));
  assert.is(byTime.calls.length, 2, 'the third try would start after 150 ms > 120 ms');
});

client('a request that hangs times out and is retried', async () => {
  const s = scripted(['hang', Response.json({ stop: false })]);
  assert.equal(await clientFor(s, policy, 20).progress(ID, 1, 1, 4), { ok: true });
  assert.is(s.calls.length, 2);
});

client("the gateway's decisions come back as typed refusals, never retried", async () => {
  const cases: [Response, unknown][] = [
    [problem(409, { code: 'claimed', retry_after_s: 42 }, { 'retry-after': '42' }), { code: 'claimed', retryAfterMs: 42_000 }],
    [problem(409, { code: 'canceled', stop: true }), { code: 'canceled' }],
    [problem(409, { code: 'already_finished', stop: true }), { code: 'already_finished' }],
    [problem(409, { code: 'lease_lost', stop: true }), { code: 'lease_lost' }],
    [problem(404, { code: 'not_found' }), { code: 'not_found' }],
    [new Response('<h1>Not Found</h1>', { status: 404 }), { code: 'refused', status: 404, problemCode: 'http_404' }],
    [problem(401, { code: 'unauthorized' }), { code: 'refused', status: 401, problemCode: 'unauthorized' }],
  ];
  for (const [answer, expected] of cases) {
    const s = scripted([answer]);
    const result = await clientFor(s).claim(ID, 'r1');
    assert.not.ok(result.ok);
    const { message: _message, ...rest } = result as Exclude<typeof result, { ok: true }>;
    assert.equal(rest, { ok: false, ...(expected as object) });
    assert.is(s.calls.length, 1);
    assert.equal(s.waits, []);
  }
});

client('with the default policy a report rides out a gateway away for 10 s (a restart), not just a few tries', async () => {
  const { retry } = parseRunnerConfig({ RUNNER_TOKEN });
  let now = 0;
  const calls: number[] = [];
  const clock: Clock = { now: () => now, random: () => 1, sleep: async (ms) => void (now += ms) };
  const fetchUntil10s: typeof fetch = async () => {
    calls.push(now);
    return now < 10_000 ? problem(503, { code: 'database_unavailable' }) : Response.json({ status: 'completed' });
  };
  const client = createGatewayClient({ baseUrl: 'http://gateway.test', token: RUNNER_TOKEN, timeoutMs: 5000, retry, fetch: fetchUntil10s, clock });
  assert.equal(await client.complete(ID, 1, [{ key: `generated/${ID}/0.png` }]), { ok: true });
  assert.ok(calls.length > 6, `${calls.length} tries`);
});

client('a failure message with text PostgreSQL cannot store is sent with U+FFFD in its place, cut to 2000 characters', async () => {
  const s = scripted([Response.json({ status: 'failed' })]);
  const message = `${'x'.repeat(1999)}\ud83d\ude00 and \u0000 and \ud800`;
  assert.equal(await clientFor(s).fail(ID, 1, 'generation_failed', message), { ok: true });
  const sent = (s.calls[0]!.body as { message: string }).message;
  assert.is(sent, `${'x'.repeat(1999)}\ufffd`, 'the cut through the emoji leaves no lone surrogate');
  const other = scripted([Response.json({ status: 'failed' })]);
  await clientFor(other).fail(ID, 1, 'generation_failed', 'a\u0000b\udfffc');
  assert.is((other.calls[0]!.body as { message: string }).message, 'a\ufffdb\ufffdc');
});

client.run();
