// The runner's work loop (docs/architecture.md, decision 4): for each job message, claim the generation
// through the gateway, run the pipeline with throttled progress reports (the heartbeats, whose
// answer can stop it), store the images, report completion, and only then ack. A message that can
// never succeed is dead-lettered; one that failed for reasons that may pass goes back to the queue,
// and a generation that keeps failing is failed with `too_many_attempts` before the queue's
// delivery limit would dead-letter it.
import type { Logger } from '../core/log.ts';
import type { GenerationParams } from '../core/request.ts';
import { decodeJobMessage } from '../core/message.ts';
import type { Consumer, Delivery, JobQueue } from '../queue/types.ts';
import type { ImageStore, StoredImageRef } from '../storage/types.ts';
import { realClock, withRetry, type Clock, type RetryPolicy } from '../core/retry.ts';
import { GatewayUnavailableError, type Claim, type GatewayClient, type Refusal, type ReportResult } from './gateway-client.ts';
import type { JobOutcome, RunnerMetrics } from './metrics.ts';
import type { Model } from './pipeline/model.ts';
import { GenerationAbortedError, txt2img, type Txt2ImgResult } from './pipeline/txt2img.ts';

export interface WorkerOptions {
  queue: JobQueue;
  gateway: GatewayClient;
  /** The model to generate with; called per job (loadModel caches it). */
  model: () => Promise<Model> | Model;
  store: ImageStore;
  runnerId: string;
  /** Jobs worked on at once. */
  prefetch: number;
  /** Least time between progress reports; the last step is always reported. Default 250 ms. */
  progressIntervalMs?: number;
  /** Claims of one generation (by any runner) before it is failed with `too_many_attempts`. */
  maxAttempts: number;
  /** The queue's delivery limit: on the last delivery it allows, a job is failed rather than requeued into the dead letters. */
  deliveryLimit?: number;
  /** Retries of a failed image upload. */
  uploadRetry?: RetryPolicy;
  clock?: Clock;
  log: Logger;
  metrics: RunnerMetrics;
}

export type WorkerState = 'starting' | 'running' | 'stopping' | 'stopped';

export interface Worker {
  /** Resolves once the worker consumes; rejects when the queue refused the consumer. */
  readonly started: Promise<void>;
  state(): WorkerState;
  /**
   * Stops taking messages, lets the current jobs finish within `graceMs`, else aborts them and
   * hands their messages back unacked; resolves once no message is held.
   */
  stop(graceMs: number): Promise<void>;
}

/** How long a stopping runner tries to release a claim it hands back. */
const RELEASE_TIMEOUT_MS = 5000;

const DEFAULT_UPLOAD_RETRY: RetryPolicy = { attempts: 5, baseDelayMs: 200, maxDelayMs: 5000, maxElapsedMs: 30_000 };

/** A failure that may pass with time or on another runner: the message goes back to the queue. */
class TransientJobError extends Error {
  override name = 'TransientJobError';
}

/** The abort reason of jobs still running when the grace period ends. */
class HandedBackError extends Error {
  override name = 'HandedBackError';
  constructor() {
    super('the runner is stopping; the job is handed back to the queue');
  }
}

interface Job {
  delivery: Delivery;
  id: string | null;
  claim: Claim | null;
  /** Aborts the pipeline, gateway calls and waits of this job. */
  controller: AbortController;
  /** The gateway said to stop (canceled, finished elsewhere, lease lost). */
  stopReason: Refusal | null;
  settled: boolean;
}

export function startWorker(options: WorkerOptions): Worker {
  const { queue, gateway, store, runnerId, log, metrics, maxAttempts } = options;
  const clock = options.clock ?? realClock;
  const progressIntervalMs = options.progressIntervalMs ?? 250;
  const uploadRetry = options.uploadRetry ?? DEFAULT_UPLOAD_RETRY;

  let state: WorkerState = 'starting';
  let consumer: Consumer | null = null;
  let stopping: Promise<void> | null = null;
  const active = new Map<Job, Promise<void>>();
  /** Messages to hand back once the consumer is canceled: requeued before, they would come straight back. */
  const parked: Delivery[] = [];

  // Messages can arrive before consume() resolves: 'starting' takes them too.
  const taking = () => state === 'starting' || state === 'running';

  const settle = (job: Job, outcome: JobOutcome, action: 'ack' | 'requeue' | 'reject') => {
    if (job.settled) return;
    job.settled = true;
    metrics.jobs.inc({ outcome });
    if (action === 'requeue' && !taking()) parked.push(job.delivery);
    else job.delivery[action]();
  };

  const onDelivery = (delivery: Delivery): Promise<void> => {
    if (!taking()) {
      // Arrived while stopping: never started, handed back after the consumer is canceled.
      parked.push(delivery);
      metrics.jobs.inc({ outcome: 'requeued' });
      return Promise.resolve();
    }
    const job: Job = { delivery, id: null, claim: null, controller: new AbortController(), stopReason: null, settled: false };
    metrics.jobsInProgress.inc();
    const done = run(job).finally(() => {
      metrics.jobsInProgress.dec();
      active.delete(job);
    });
    active.set(job, done);
    return done;
  };

  async function run(job: Job): Promise<void> {
    try {
      await work(job);
    } catch (err) {
      if (job.controller.signal.reason instanceof HandedBackError) {
        log.info('job handed back: the runner is stopping', { id: job.id, attempt: job.claim?.attempt });
        if (job.claim) await releaseClaim(job.claim);
        settle(job, 'requeued', 'requeue');
      } else {
        await handBack(job, err);
      }
    }
  }

  async function work(job: Job): Promise<void> {
    const { delivery } = job;
    let message;
    try {
      message = decodeJobMessage(delivery.body);
    } catch (err) {
      log.warn('unreadable job message dead-lettered', { err, delivery_count: delivery.deliveryCount, body: delivery.body.subarray(0, 200).toString('utf8') });
      settle(job, 'rejected', 'reject');
      return;
    }
    const id = (job.id = message.id);
    const signal = job.controller.signal;

    const received = clock.now();
    const claimed = await gateway.claim(id, runnerId, { signal });
    metrics.claimSeconds.observe((clock.now() - received) / 1000);
    if (!claimed.ok) return onClaimRefused(job, claimed);
    const claim = (job.claim = claimed.claim);
    if (claim.queuedMs !== undefined) metrics.queueWaitSeconds.observe(claim.queuedMs / 1000);
    log.debug('generation claimed', { id, attempt: claim.attempt, delivery_count: delivery.deliveryCount });
    if (claim.attempt > maxAttempts) {
      return reportFailure(job, 'too_many_attempts', `The generation was claimed ${claim.attempt} times without finishing (runners stopped or lost it); the limit is ${maxAttempts}.`);
    }

    const result = await generate(job, claim);
    if (!result) return;

    signal.throwIfAborted();
    const uploadStarted = clock.now();
    const images = await Promise.all(result.images.map((image, index) => upload(job, claim, index, image.png)));
    metrics.uploadSeconds.observe((clock.now() - uploadStarted) / 1000);

    signal.throwIfAborted();
    const completed = await gateway.complete(id, claim.attempt, images, { signal });
    if (!completed.ok) return onStopped(job, completed, 'complete');
    settle(job, 'completed', 'ack');
    log.info('generation completed', {
      id,
      attempt: claim.attempt,
      images: images.length,
      generation_ms: Math.round(result.timingsMs.total),
      upload_ms: Math.round(clock.now() - uploadStarted),
    });
  }

  /** Runs the pipeline; resolves to null when the job ended on the way (stopped by the gateway, or a failure reported). */
  async function generate(job: Job, claim: Claim): Promise<Txt2ImgResult | null> {
    const { signal } = job.controller;
    let model: Model;
    try {
      model = await options.model();
    } catch (err) {
      throw new TransientJobError(`the model could not be loaded: ${(err as Error).message}`, { cause: err });
    }
    const reporter = createProgressReporter({
      intervalMs: progressIntervalMs,
      clock,
      send: (step, total) => gateway.progress(claim.id, claim.attempt, step, total, { signal }),
      onStop: (refusal) => {
        job.stopReason = refusal;
        job.controller.abort(refusal);
      },
      onError: (err) => {
        if (!signal.aborted) log.warn('progress report failed; generation continues', { id: claim.id, err });
      },
    });
    let lastStep = clock.now();
    let result: Txt2ImgResult;
    try {
      result = await txt2img(model, claim.params, {
        signal,
        onStep: (step, total) => {
          const now = clock.now();
          metrics.stepSeconds.observe((now - lastStep) / 1000);
          lastStep = now;
          reporter.step(step, total);
        },
      });
      // The last step's answer decides whether the images are worth storing.
      await reporter.finish();
    } catch (err) {
      reporter.close();
      if (err instanceof GenerationAbortedError && job.stopReason) {
        onStopped(job, job.stopReason, 'progress');
        return null;
      }
      if (err instanceof GenerationAbortedError) throw signal.reason;
      const failure = classifyPipelineError(err, claim.params);
      const fields = { id: claim.id, attempt: claim.attempt, code: failure.code, err };
      // What the request asked for is not a fault of ours: no stack trace, not an error.
      if (failure.code === 'generation_failed') log.error('pipeline error', { ...fields, stack: (err as Error).stack });
      else log.warn('generation refused by the pipeline', fields);
      await reportFailure(job, failure.code, failure.message);
      return null;
    }
    if (job.stopReason) {
      onStopped(job, job.stopReason, 'progress');
      return null;
    }
    metrics.generationSeconds.observe(result.timingsMs.total / 1000);
    return result;
  }

  async function upload(job: Job, claim: Claim, index: number, png: Buffer): Promise<StoredImageRef> {
    try {
      return await withRetry(() => store.putImage({ generationId: claim.id, index, png, seed: claim.params.seed }), uploadRetry, {
        clock,
        signal: job.controller.signal,
        onRetry: (err, tries, wait) => {
          metrics.uploadRetries.inc();
          log.warn('image upload failed; retrying', { id: claim.id, index, tries, delay_ms: Math.round(wait), err });
        },
      });
    } catch (err) {
      if (job.controller.signal.aborted) throw err;
      throw new TransientJobError(`storing image ${index} failed: ${(err as Error).message}`, { cause: err });
    }
  }

  async function onClaimRefused(job: Job, refusal: Refusal): Promise<void> {
    const fields = { id: job.id, code: refusal.code, delivery_count: job.delivery.deliveryCount };
    switch (refusal.code) {
      case 'already_finished':
      case 'canceled':
      case 'lease_lost':
        log.info('job skipped: nothing to do', fields);
        return settle(job, 'skipped', 'ack');
      case 'not_found':
        log.warn('job skipped: the gateway knows no such generation', fields);
        return settle(job, 'skipped', 'ack');
      case 'claimed':
        // Another runner's lease is live. If that runner finishes, nothing is left to do; if it
        // stops, its lease runs out and the gateway dispatches the job again. Either way holding
        // this copy would only keep a slot idle and use up a delivery.
        log.info('job skipped: another runner holds its live lease', fields);
        return settle(job, 'skipped', 'ack');
      case 'refused':
        throw new TransientJobError(`the gateway refused the claim: ${refusal.status} ${refusal.problemCode}: ${refusal.message}`);
    }
  }

  /** The gateway said stop (or refused a report): the message is done here. */
  function onStopped(job: Job, refusal: Refusal, during: string): void {
    if (refusal.code === 'refused') {
      throw new TransientJobError(`the gateway refused ${during}: ${refusal.status} ${refusal.problemCode}: ${refusal.message}`);
    }
    log.info('job stopped by the gateway', { id: job.id, attempt: job.claim?.attempt, code: refusal.code, during });
    settle(job, refusal.code === 'canceled' ? 'canceled' : 'skipped', 'ack');
  }

  async function reportFailure(job: Job, code: string, message: string): Promise<void> {
    const claim = job.claim!;
    const answer = await gateway.fail(claim.id, claim.attempt, code, message, { signal: job.controller.signal });
    if (!answer.ok) return onStopped(job, answer, 'fail');
    log.warn('generation failed; reported', { id: claim.id, attempt: claim.attempt, code, message });
    settle(job, 'failed', 'ack');
  }

  /**
   * Ends the lease of a claim handed back, so the redelivered message is claimed at once rather
   * than after the lease. Best effort and brief: the process is stopping, and without it the lease
   * only runs out.
   */
  async function releaseClaim(claim: Claim): Promise<void> {
    try {
      const answer = await gateway.release(claim.id, claim.attempt, { signal: AbortSignal.timeout(RELEASE_TIMEOUT_MS) });
      if (!answer.ok) log.info('lease not released', { id: claim.id, attempt: claim.attempt, code: answer.code });
    } catch (err) {
      log.warn('could not release the lease; it runs out by itself', { id: claim.id, attempt: claim.attempt, err });
    }
  }

  /** After a failure that may pass: back to the queue, unless this was the job's last chance. */
  async function handBack(job: Job, err: unknown): Promise<void> {
    const fields = { id: job.id, attempt: job.claim?.attempt, delivery_count: job.delivery.deliveryCount, err };
    if (!(err instanceof TransientJobError || err instanceof GatewayUnavailableError)) log.error('unexpected job error', { ...fields, stack: (err as Error).stack });
    const claim = job.claim;
    const limit = options.deliveryLimit;
    const lastChance = claim !== null && (claim.attempt >= maxAttempts || (limit !== undefined && job.delivery.deliveryCount > limit));
    if (lastChance && taking()) {
      try {
        return await reportFailure(job, 'too_many_attempts', `Gave up after attempt ${claim.attempt} of ${maxAttempts}: ${(err as Error).message}`);
      } catch (failErr) {
        log.warn('could not report the failure; the queue will dead-letter the job', { ...fields, failErr });
      }
    } else {
      log.warn('job requeued after a transient failure', fields);
    }
    settle(job, 'requeued', 'requeue');
  }

  const started = queue.consume(onDelivery, { prefetch: options.prefetch }).then((c) => {
    consumer = c;
    if (state === 'starting') state = 'running';
  });
  started.catch((err) => log.error('could not start consuming', { err }));

  return {
    started,
    state: () => state,
    stop(graceMs: number) {
      stopping ??= (async () => {
        state = 'stopping';
        await started.catch(() => {});
        const finished = Promise.all(active.values());
        const grace = new AbortController();
        const inTime = await Promise.race([
          finished.then(() => true),
          clock.sleep(graceMs, grace.signal).then(
            () => false,
            () => true,
          ),
        ]);
        grace.abort();
        if (!inTime) {
          log.warn('grace period over; handing back the jobs still running', { jobs: active.size, grace_ms: graceMs });
          for (const job of active.keys()) job.controller.abort(new HandedBackError());
          await finished;
        }
        await consumer?.cancel();
        for (const delivery of parked.splice(0)) delivery.requeue();
        state = 'stopped';
      })();
      return stopping;
    },
  };
}

interface ProgressReporterOptions {
  intervalMs: number;
  clock: Clock;
  send: (step: number, total: number) => Promise<ReportResult>;
  /** The gateway answered that the work should stop. */
  onStop: (refusal: Refusal) => void;
  onError: (err: unknown) => void;
}

/**
 * Throttled progress reports: at most one every `intervalMs`, one at a time, always the latest
 * step; `finish()` sends the last step at once and waits for every answer.
 */
function createProgressReporter(o: ProgressReporterOptions) {
  let pending: { step: number; total: number } | null = null;
  let inFlight: Promise<void> | null = null;
  let lastSentAt = -Infinity;
  let timer: NodeJS.Timeout | null = null;
  let closed = false;

  const send = () => {
    if (!pending || inFlight || closed) return;
    const { step, total } = pending;
    pending = null;
    lastSentAt = o.clock.now();
    inFlight = o
      .send(step, total)
      .then(
        (answer) => {
          if (!answer.ok && !closed) {
            closed = true;
            o.onStop(answer);
          }
        },
        (err) => o.onError(err),
      )
      .finally(() => {
        inFlight = null;
        schedule();
      });
  };
  const schedule = () => {
    if (!pending || inFlight || closed || timer) return;
    const wait = lastSentAt + o.intervalMs - o.clock.now();
    if (wait <= 0) send();
    else timer = setTimeout(() => ((timer = null), send()), wait);
  };
  const clearTimer = () => {
    if (timer) clearTimeout(timer);
    timer = null;
  };

  return {
    step(step: number, total: number) {
      pending = { step, total };
      schedule();
    },
    async finish() {
      clearTimer();
      while (inFlight) {
        await inFlight;
        clearTimer();
      }
      send();
      await inFlight;
    },
    close() {
      closed = true;
      clearTimer();
    },
  };
}

const OUT_OF_MEMORY = /out of memory|failed to allocate|bad_alloc|cudaErrorMemoryAllocation/i;
/** onnxruntime's words for an input the graph does not take (e.g. a size a fixed-shape export was not made for). */
const REFUSED_INPUT = /invalid dimensions|invalid rank|shape mismatch/i;

interface PipelineFailure {
  code: 'invalid_parameters' | 'resource_exhausted' | 'generation_failed';
  message: string;
}

/**
 * What a pipeline error means for the job. None is worth another try: the same parameters meet the
 * same model, and an allocation that did not fit will not fit on the next runner of the pool either
 * (they are alike), so it fails at once, naming the size.
 */
function classifyPipelineError(err: unknown, params: GenerationParams): PipelineFailure {
  const text = err instanceof Error ? err.message : String(err);
  if (OUT_OF_MEMORY.test(text)) {
    const batch = params.num_images * (params.guidance_scale > 1 ? 2 : 1);
    return {
      code: 'resource_exhausted',
      message:
        `The model ran out of memory for ${params.num_images} image(s) of ${params.width}×${params.height} ` +
        `(a batch of ${batch} latents of ${params.width / 8}×${params.height / 8}${params.guidance_scale > 1 ? ', doubled by guidance' : ''}); ` +
        `ask for fewer images or a smaller size. (${text})`,
    };
  }
  if (err instanceof RangeError || REFUSED_INPUT.test(text)) {
    return { code: 'invalid_parameters', message: `The model cannot generate with these parameters: ${text}` };
  }
  return { code: 'generation_failed', message: `The pipeline failed: ${text}` };
}
