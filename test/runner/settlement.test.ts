// How each way a job can end settles its message: the worker on a scripted gateway and a queue that
// only records, one delivery per case. Every case must settle its delivery exactly once, with the
// action and the metric outcome of the table, and report to the gateway only the failure it names.
import os from 'node:os';
import fs from 'node:fs/promises';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { encodeJobMessage } from '../../src/core/message.ts';
import { generationParamsSchema } from '../../src/core/request.ts';
import type { Delivery, JobQueue } from '../../src/queue/types.ts';
import { imageKey, type ImageStore } from '../../src/storage/types.ts';
import { GatewayUnavailableError, type ClaimResult, type GatewayClient, type Refusal, type ReportResult } from '../../src/runner/gateway-client.ts';
import { JOB_OUTCOMES, type JobOutcome } from '../../src/runner/metrics.ts';
import type { Model } from '../../src/runner/pipeline/model.ts';
import { startWorker } from '../../src/runner/worker.ts';
import { jobCount, observeSettlements, testWorkerOptions, tinyModel, type Settlement } from './rig.ts';

const it = suite<{ dir: string; model: Model }>('worker settlement');

it.before(async (ctx) => {
  ctx.dir = await fs.mkdtemp(path.join(os.tmpdir(), 'itemgen-settlement-'));
  ctx.model = await tinyModel(path.join(ctx.dir, 'model'));
});
it.after(({ dir }) => fs.rm(dir, { recursive: true, force: true }));

const ID = '0b7c4d52-5a8e-4a57-9d87-0c4c1a3f2e10';

interface Case {
  /** The claim's number (default 1 of the rig's 3). */
  attempt?: number;
  deliveryCount?: number;
  body?: Buffer;
  params?: Record<string, unknown>;
  /** The claim's answer when not granted, or what it throws. */
  claim?: Refusal | Error;
  /** Every progress report's answer. */
  progress?: ReportResult;
  complete?: ReportResult;
  fail?: ReportResult;
  /** The model the job gets, given the tiny one; default the tiny one. */
  model?: (tiny: Model) => Model;
  /** Loading the model throws. */
  modelFails?: true;
  expect: { action: Settlement['action']; outcome: JobOutcome; failed?: string[] };
}

const stop = (code: 'already_finished' | 'canceled' | 'lease_lost' | 'not_found'): Refusal => ({ ok: false, code, message: `${code} (scripted)` });
const refused: Refusal = { ok: false, code: 'refused', status: 401, problemCode: 'unauthorized', message: 'wrong token (scripted)' };
const unavailable = () => new GatewayUnavailableError('claim', 4, new Error('connection refused (scripted)'));
/** A model whose LCM schedule is too short for the 20 steps asked: the pipeline throws a RangeError. */
const lcmOf10 = (tiny: Model) => ({ ...tiny, schedulerConfig: { ...tiny.schedulerConfig, original_inference_steps: 10 } }) as Model;
const tooManyLcmSteps = { scheduler: 'lcm', num_inference_steps: 20 };

const cases: Record<string, Case> = {
  'completed: acked': { expect: { action: 'ack', outcome: 'completed' } },
  'an unreadable message: rejected, to the dead letters': { body: Buffer.from('poison'), expect: { action: 'reject', outcome: 'rejected' } },
  'claim: already finished: skipped': { claim: stop('already_finished'), expect: { action: 'ack', outcome: 'skipped' } },
  'claim: canceled: skipped': { claim: stop('canceled'), expect: { action: 'ack', outcome: 'skipped' } },
  'claim: lease lost: skipped': { claim: stop('lease_lost'), expect: { action: 'ack', outcome: 'skipped' } },
  'claim: unknown generation: skipped': { claim: stop('not_found'), expect: { action: 'ack', outcome: 'skipped' } },
  "claim: another runner's live lease: skipped": { claim: { ok: false, code: 'claimed', message: 'claimed (scripted)', retryAfterMs: 60_000 }, expect: { action: 'ack', outcome: 'skipped' } },
  'claim refused (401): requeued': { claim: refused, expect: { action: 'requeue', outcome: 'requeued' } },
  'claim: gateway unavailable: requeued': { claim: unavailable(), expect: { action: 'requeue', outcome: 'requeued' } },
  'claimed past the attempts: failed with too_many_attempts': { attempt: 4, expect: { action: 'ack', outcome: 'failed', failed: ['too_many_attempts'] } },
  'claimed past the attempts, canceled meanwhile: canceled': { attempt: 4, fail: stop('canceled'), expect: { action: 'ack', outcome: 'canceled', failed: ['too_many_attempts'] } },
  'progress: canceled: canceled': { progress: stop('canceled'), expect: { action: 'ack', outcome: 'canceled' } },
  'progress: lease lost: skipped': { progress: stop('lease_lost'), expect: { action: 'ack', outcome: 'skipped' } },
  'progress refused, attempts left: requeued': { progress: refused, expect: { action: 'requeue', outcome: 'requeued' } },
  'progress refused on the last attempt: failed with too_many_attempts': { attempt: 3, progress: refused, expect: { action: 'ack', outcome: 'failed', failed: ['too_many_attempts'] } },
  'complete: already finished: skipped': { complete: stop('already_finished'), expect: { action: 'ack', outcome: 'skipped' } },
  'complete refused, attempts left: requeued': { complete: refused, expect: { action: 'requeue', outcome: 'requeued' } },
  'complete and the failure refused on the last attempt: requeued, for the queue to dead-letter': {
    attempt: 3,
    complete: refused,
    fail: refused,
    expect: { action: 'requeue', outcome: 'requeued', failed: ['too_many_attempts'] },
  },
  'the model will not load, attempts left: requeued': { modelFails: true, expect: { action: 'requeue', outcome: 'requeued' } },
  'the model will not load, past the delivery limit: failed with too_many_attempts': {
    deliveryCount: 6,
    modelFails: true,
    expect: { action: 'ack', outcome: 'failed', failed: ['too_many_attempts'] },
  },
  'the pipeline refuses the parameters: failed with invalid_parameters, not retried': {
    model: lcmOf10,
    params: tooManyLcmSteps,
    expect: { action: 'ack', outcome: 'failed', failed: ['invalid_parameters'] },
  },
  'the pipeline refuses, and the lease was lost: skipped': {
    model: lcmOf10,
    params: tooManyLcmSteps,
    fail: stop('lease_lost'),
    expect: { action: 'ack', outcome: 'skipped', failed: ['invalid_parameters'] },
  },
  'the pipeline refuses, and the failure is refused: requeued': {
    model: lcmOf10,
    params: tooManyLcmSteps,
    fail: refused,
    expect: { action: 'requeue', outcome: 'requeued', failed: ['invalid_parameters'] },
  },
};

/** A queue that hands the worker the deliveries a test makes, and nothing else. */
function handDeliveredQueue() {
  let handler: ((d: Delivery) => void | Promise<void>) | null = null;
  const idle = async () => ({ cancel: async () => {} });
  const queue: JobQueue = {
    kind: 'memory',
    isConnected: () => true,
    onConnected: () => {},
    publish: async () => {},
    consume: async (h) => {
      handler = h;
      return { cancel: async () => {} };
    },
    consumeDeadLetters: idle,
    close: async () => {},
  };
  const noop = () => {};
  return { queue, deliver: (body: Buffer, deliveryCount: number) => handler!({ body, deliveryCount, ack: noop, requeue: noop, reject: noop }) };
}

function scriptedGateway(c: Case) {
  const failed: string[] = [];
  const ok: ReportResult = { ok: true };
  const gateway: GatewayClient = {
    async claim(id): Promise<ClaimResult> {
      if (c.claim instanceof Error) throw c.claim;
      if (c.claim) return c.claim;
      const params = generationParamsSchema.parse({ prompt: 'a glowing sword', width: 256, height: 256, num_inference_steps: 2, seed: 1, ...c.params });
      return { ok: true, claim: { id, attempt: c.attempt ?? 1, params, leaseExpiresAt: new Date(Date.now() + 60_000), leaseSeconds: 60 } };
    },
    progress: async () => c.progress ?? ok,
    complete: async () => c.complete ?? ok,
    async fail(_id, _attempt, code) {
      failed.push(code);
      return c.fail ?? ok;
    },
    release: async () => ok,
    registerModel: async () => ok,
  };
  return { gateway, failed };
}

const store: ImageStore = {
  kind: 'local',
  putImage: async ({ generationId, index }) => ({ key: imageKey(generationId, index) }),
  linkFor: async () => null,
  read: async () => null,
  exists: async () => false,
  putThumbnail: async () => {},
  delete: async () => {},
};

for (const [name, c] of Object.entries(cases)) {
  it(name, async (ctx) => {
    const hand = handDeliveredQueue();
    const settlements = observeSettlements(hand.queue);
    const { gateway, failed } = scriptedGateway(c);
    const model = c.model ? c.model(ctx.model) : ctx.model;
    const loadModel = () => {
      if (c.modelFails) throw new Error('model files missing (scripted)');
      return model;
    };
    const options = testWorkerOptions({ queue: settlements.queue, gateway, model: loadModel, store, progressIntervalMs: 0 });
    const worker = startWorker(options);
    await worker.started;
    const params = generationParamsSchema.parse({ prompt: 'a glowing sword', seed: 1 });
    await hand.deliver(c.body ?? encodeJobMessage({ v: 1, id: ID, params }), c.deliveryCount ?? 1);
    await worker.stop(0);

    assert.equal(settlements.seen.map((s) => s.action), [c.expect.action], 'settled once');
    for (const outcome of JOB_OUTCOMES) assert.is(await jobCount(options.metrics, outcome), outcome === c.expect.outcome ? 1 : 0, outcome);
    assert.equal(failed, c.expect.failed ?? [], 'failures reported');
  });
}

it.run();
