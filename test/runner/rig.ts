// The one worker rig of the runner's tests: the options every test worker starts from, a queue
// wrapper that records how each delivery was settled, and a worker on a real test gateway with a
// local image folder. worker.test.ts runs it end to end; settlement.test.ts uses its parts on a
// scripted gateway.
import fs from 'node:fs/promises';
import path from 'node:path';
import { createLogger } from '../../src/core/log.ts';
import type { Delivery, JobQueue } from '../../src/queue/types.ts';
import { createLocalImageStore } from '../../src/storage/local.ts';
import type { ImageStore } from '../../src/storage/types.ts';
import { createGatewayClient, type GatewayClient } from '../../src/runner/gateway-client.ts';
import { createRunnerMetrics, type JobOutcome, type RunnerMetrics } from '../../src/runner/metrics.ts';
import { loadModel, type Model } from '../../src/runner/pipeline/model.ts';
import { writeTinyModel } from '../../src/runner/pipeline/tiny-model.ts';
import { startWorker, type JobSettlement, type Worker, type WorkerOptions } from '../../src/runner/worker.ts';
import { RUNNER_TOKEN, startTestGateway, type TestGateway } from '../helpers/gateway.ts';

// TEST_LOG=debug shows what the worker and the gateway log, for a test that fails.
export const testLog = createLogger((process.env.TEST_LOG as 'debug' | undefined) ?? 'silent');
export const fastRetry = { attempts: 4, baseDelayMs: 1, maxDelayMs: 5, maxElapsedMs: 5000 };

/** Writes the tiny model into `dir` and loads it on the CPU. */
export async function tinyModel(dir: string): Promise<Model> {
  await writeTinyModel(dir, { seed: 1 });
  return loadModel(dir, { executionProvider: 'cpu' });
}

/**
 * A test worker's options: one slot, 3 attempts, a delivery limit of 5, upload retries of a few
 * milliseconds, the test log and metrics of its own; what the test passes overrides them.
 */
export function testWorkerOptions(o: Pick<WorkerOptions, 'queue' | 'gateway' | 'model' | 'store'> & Partial<WorkerOptions>): WorkerOptions {
  return { runnerId: 'test-runner', prefetch: 1, maxAttempts: 3, deliveryLimit: 5, uploadRetry: fastRetry, log: testLog, metrics: createRunnerMetrics(), ...o };
}

export async function jobCount(metrics: RunnerMetrics, outcome: JobOutcome): Promise<number> {
  const { values } = await metrics.jobs.get();
  return values.find((v) => v.labels.outcome === outcome)?.value ?? 0;
}

export interface Settlement {
  action: JobSettlement['action'];
  body: Buffer;
  deliveryCount: number;
}

/** The queue as the worker sees it, recording how each delivery was settled. */
export function observeSettlements(queue: JobQueue) {
  const seen: Settlement[] = [];
  const waiters: { match: (s: Settlement) => boolean; resolve: (s: Settlement) => void }[] = [];
  const record = (s: Settlement) => {
    seen.push(s);
    for (const w of [...waiters]) {
      if (w.match(s)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(s);
      }
    }
  };
  const wrap = (d: Delivery): Delivery => {
    const settle = (action: Settlement['action'], f: () => void) => () => {
      record({ action, body: d.body, deliveryCount: d.deliveryCount });
      f();
    };
    return { body: d.body, deliveryCount: d.deliveryCount, ack: settle('ack', d.ack), requeue: settle('requeue', d.requeue), reject: settle('reject', d.reject) };
  };
  return {
    queue: { ...queue, consume: (handler, options) => queue.consume((d) => handler(wrap(d)), options) } satisfies JobQueue,
    seen,
    /** The first settlement (already seen or to come) that matches. */
    next(match: (s: Settlement) => boolean): Promise<Settlement> {
      const found = seen.find(match);
      return found ? Promise.resolve(found) : new Promise((resolve) => waiters.push({ match, resolve }));
    },
  };
}

export const forId = (id: string, action?: Settlement['action']) => (s: Settlement) =>
  s.body.toString('utf8').includes(id) && (action === undefined || s.action === action);

export interface Rig {
  t: TestGateway;
  worker: Worker;
  metrics: RunnerMetrics;
  imagesDir: string;
  settlements: ReturnType<typeof observeSettlements>;
  startWorker(): Worker;
  stop(): Promise<void>;
}

export interface RigOptions {
  broker?: 'rabbitmq' | 'memory';
  gateway?: (inner: GatewayClient) => GatewayClient;
  store?: (inner: ImageStore) => ImageStore;
  model?: () => Model;
  worker?: Partial<WorkerOptions>;
  /** Start the worker later (after the test set something up). */
  deferWorker?: boolean;
  /** The test gateway's environment (LEASE_SECONDS, …). */
  gatewayEnv?: Record<string, string>;
}

export function testGatewayClient(t: TestGateway): GatewayClient {
  return createGatewayClient({ baseUrl: t.url, token: RUNNER_TOKEN, timeoutMs: 5000, retry: fastRetry });
}

export async function startRig(ctx: { dir: string; model: Model }, o: RigOptions = {}): Promise<Rig> {
  const t = await startTestGateway({ store: 'postgres', broker: o.broker ?? 'rabbitmq', env: { ...(process.env.TEST_LOG ? { LOG_LEVEL: process.env.TEST_LOG } : {}), ...o.gatewayEnv } });
  const imagesDir = await fs.mkdtemp(path.join(ctx.dir, 'images-'));
  const store = createLocalImageStore(imagesDir);
  const client = testGatewayClient(t);
  const settlements = observeSettlements(t.gw.queue);
  const metrics = createRunnerMetrics();
  const start = () =>
    startWorker(
      testWorkerOptions({
        queue: settlements.queue,
        gateway: o.gateway ? o.gateway(client) : client,
        model: o.model ?? (() => ctx.model),
        store: o.store ? o.store(store) : store,
        metrics,
        ...o.worker,
      }),
    );
  let worker: Worker | undefined;
  const rig: Rig = {
    t,
    get worker() {
      return worker!;
    },
    metrics,
    imagesDir,
    settlements,
    startWorker() {
      worker = start();
      return worker;
    },
    async stop() {
      await worker?.stop(0);
      await t.stop();
    },
  };
  if (!o.deferWorker) await rig.startWorker().started;
  return rig;
}
