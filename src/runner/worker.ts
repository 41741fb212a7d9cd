// The runner's work loop (docs/architecture.md, decision 4): for each job message, claim the generation
// through the gateway, run the pipeline with throttled progress reports (the heartbeats, whose
// answer can stop it), store the images, report completion, and only then ack. A message that can
// never succeed is dead-lettered; one that failed for reasons that may pass goes back to the queue,
// and a generation that keeps failing is failed with `too_many_attempts` before the queue's
// delivery limit would dead-letter it.
//
// Jobs are pipelined (decision 19): with a prefetch of 2 or more, the next job is claimed and its
// prompt encoded while a generation runs, and the last one's PNGs, upload and completion go on
// while the next generates. The model's stages take turns on lanes (model-lane.ts), so one
// generation runs at a time; a claimed job waiting for its turn keeps its lease with step-0
// progress reports, whose answer (canceled, lost) takes it out of the line before it runs.
import type { Logger } from '../core/log.ts';
import { decodeJobMessage } from '../core/message.ts';
import { denoisingSteps } from '../core/request.ts';
import type { Consumer, Delivery, JobQueue } from '../queue/types.ts';
import type { ImageStore, StoredImageRef } from '../storage/types.ts';
import { realClock, withRetry, type Clock, type RetryPolicy } from '../core/retry.ts';
import { GatewayUnavailableError, type Claim, type GatewayClient, type Refusal } from './gateway-client.ts';
import type { RunnerMetrics } from './metrics.ts';
import { classifyPipelineError } from './pipeline-failure.ts';
import type { Model } from './pipeline/model.ts';
import { createBusyTime, createLane, type BusyTime } from './model-lane.ts';
import {
  encodeDecodedImages,
  encodeRequestPrompt,
  GenerationAbortedError,
  generateFromEmbeddings,
  type DecodedImages,
  type EncodedPrompt,
  type Txt2ImgResult,
} from './pipeline/txt2img.ts';
import { createPreviewThrottle } from './preview-throttle.ts';
import { createProgressReporter, type ProgressReporter } from './progress-reporter.ts';
import { annotate, contextFrom, GENERATION_ID, SpanKind, withSpan } from '../telemetry/index.ts';

export interface WorkerOptions {
  queue: JobQueue;
  gateway: GatewayClient;
  /** The model to generate with; called per job (loadModel caches it). */
  model: () => Promise<Model> | Model;
  store: ImageStore;
  runnerId: string;
  /**
   * Job messages held at once: one generating, the others claimed and waiting for the model, or
   * storing and reporting theirs. 2 or more pipelines jobs (decision 19).
   */
  prefetch: number;
  /** Least time between progress reports; the last step is always reported. Default 250 ms. */
  progressIntervalMs?: number;
  /** Least time between live previews (sent with the progress reports); the first step always has one. Default 500 ms. */
  previewIntervalMs?: number;
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
  /** Milliseconds the model has spent in a stage (text encoder, denoising, VAE) since the start; overlapping stages count once. */
  modelBusyMs(): number;
  /**
   * Stops taking messages, hands back at once the jobs still waiting for the model (their leases
   * released), lets the generating and finishing ones end within `graceMs`, else aborts them and
   * hands their messages back unacked; resolves once no message is held.
   */
  stop(graceMs: number): Promise<void>;
}

/** Milliseconds as reported: a tenth of a millisecond is precision enough. */
const ms = (value: number) => Math.round(value * 10) / 10;

/** How long a stopping runner tries to release a claim it hands back. */
const RELEASE_TIMEOUT_MS = 5000;

const DEFAULT_UPLOAD_RETRY: RetryPolicy = { attempts: 5, baseDelayMs: 200, maxDelayMs: 5000, maxElapsedMs: 30_000 };

/**
 * What working on one job message came to, with why. Job processing only returns it; `settle` is
 * the one place that turns it into the message's ack, requeue or reject, so a message is settled
 * exactly once however its job ended.
 */
export type JobSettlement =
  /** Done with here: completed, failed (reported to the gateway), canceled, or nothing to do. */
  | { action: 'ack'; outcome: 'completed' | 'failed' | 'canceled' | 'skipped'; reason: string }
  /** Back to the queue: a failure that may pass, or the runner is stopping. */
  | { action: 'requeue'; reason: string }
  /** Can never succeed: to the dead letters. */
  | { action: 'reject'; reason: string };

/** The gateway's answers that mean "stop working on this", as opposed to `refused`, a bug or a misconfiguration. */
type Stop = Exclude<Refusal, { code: 'refused' }>;

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

/**
 * A `refused` answer is thrown as a failure that may pass (a token or a deployment can be fixed),
 * so it takes the path of every such failure: requeued, or failed on the job's last chance.
 */
function throwIfRefused(refusal: Refusal, what: string): asserts refusal is Stop {
  if (refusal.code === 'refused') {
    throw new TransientJobError(`the gateway refused ${what}: ${refusal.status} ${refusal.problemCode}: ${refusal.message}`);
  }
}

/** Where a job is: a stopping runner hands back the ones not yet on the model at once. */
type JobPhase = 'claiming' | 'waiting' | 'generating' | 'finishing';

interface Job {
  delivery: Delivery;
  id: string | null;
  claim: Claim | null;
  phase: JobPhase;
  /** Aborts the pipeline, gateway calls and waits of this job. */
  controller: AbortController;
  /** The gateway answered a progress report with a refusal (canceled, finished elsewhere, lease lost). */
  stopReason: Refusal | null;
}

/** The pipeline's images, or how the job ended on the way there. */
type Generated = { ok: true; result: Txt2ImgResult; model: Model } | { ok: false; settlement: JobSettlement };

export function startWorker(options: WorkerOptions): Worker {
  const { queue, gateway, store, runnerId, log, metrics, maxAttempts } = options;
  const clock = options.clock ?? realClock;
  const progressIntervalMs = options.progressIntervalMs ?? 250;
  const uploadRetry = options.uploadRetry ?? DEFAULT_UPLOAD_RETRY;
  // The text encoder has a lane of its own: the next job's prompt is encoded while a generation runs.
  const busy: BusyTime = createBusyTime();
  const textLane = createLane(busy);
  const modelLane = createLane(busy);
  metrics.readModelBusyFrom(() => busy.busyMs());

  let state: WorkerState = 'starting';
  let consumer: Consumer | null = null;
  let stopping: Promise<void> | null = null;
  const active = new Map<Job, Promise<void>>();
  /** Messages to hand back once the consumer is canceled: requeued before, they would come straight back. */
  const parked: Delivery[] = [];

  // Messages can arrive before consume() resolves: 'starting' takes them too.
  const taking = () => state === 'starting' || state === 'running';

  /** The one place a delivery is acked, requeued (or parked until the consumer is canceled) or rejected. */
  const settle = (delivery: Delivery, id: string | null, settlement: JobSettlement) => {
    const outcome = settlement.action === 'ack' ? settlement.outcome : settlement.action === 'requeue' ? 'requeued' : 'rejected';
    metrics.jobs.inc({ outcome });
    log.debug('job settled', { id, action: settlement.action, outcome, reason: settlement.reason });
    if (settlement.action === 'requeue' && !taking()) parked.push(delivery);
    else delivery[settlement.action]();
  };

  const onDelivery = (delivery: Delivery): Promise<void> => {
    if (!taking()) {
      // Never started: handed back after the consumer is canceled.
      settle(delivery, null, { action: 'requeue', reason: 'arrived while the runner is stopping' });
      return Promise.resolve();
    }
    const job: Job = { delivery, id: null, claim: null, phase: 'claiming', controller: new AbortController(), stopReason: null };
    metrics.jobsInProgress.inc();
    // The job's span continues the trace its message carries: the submit's (docs/architecture.md, decision 15).
    const processed = withSpan(
      'process generation',
      { 'messaging.system': 'rabbitmq', 'messaging.operation.type': 'process', 'messaging.message.delivery_count': delivery.deliveryCount },
      async (span) => {
        const settlement = await processJob(job);
        span.setAttributes({ 'itemgen.job.action': settlement.action, 'itemgen.job.reason': settlement.reason });
        return settlement;
      },
      { kind: SpanKind.CONSUMER, parent: contextFrom(delivery.headers) },
    );
    const done = processed
      .then((settlement) => settle(delivery, job.id, settlement))
      .finally(() => {
        metrics.jobsInProgress.dec();
        active.delete(job);
      });
    active.set(job, done);
    return done;
  };

  /** Works on the job to its settlement; what `work` throws is a failure that may pass, or the runner stopping. */
  async function processJob(job: Job): Promise<JobSettlement> {
    try {
      return await work(job);
    } catch (err) {
      if (job.controller.signal.reason instanceof HandedBackError) {
        log.info('job handed back: the runner is stopping', { id: job.id, attempt: job.claim?.attempt });
        if (job.claim) await releaseClaim(job.claim);
        return { action: 'requeue', reason: 'handed back: the runner is stopping' };
      }
      return retryOrGiveUp(job, err);
    }
  }

  async function work(job: Job): Promise<JobSettlement> {
    const { delivery } = job;
    let message;
    try {
      message = decodeJobMessage(delivery.body);
    } catch (err) {
      log.warn('unreadable job message dead-lettered', { err, delivery_count: delivery.deliveryCount, body: delivery.body.subarray(0, 200).toString('utf8') });
      return { action: 'reject', reason: `unreadable job message: ${(err as Error).message}` };
    }
    const id = (job.id = message.id);
    annotate({ [GENERATION_ID]: id });
    const signal = job.controller.signal;

    const received = clock.now();
    const claimed = await gateway.claim(id, runnerId, { signal });
    const claimMs = clock.now() - received;
    metrics.claimSeconds.observe(claimMs / 1000);
    if (!claimed.ok) {
      throwIfRefused(claimed, 'the claim');
      return skipClaim(job, claimed);
    }
    const claim = (job.claim = claimed.claim);
    if (claim.queuedMs !== undefined) metrics.queueWaitSeconds.observe(claim.queuedMs / 1000);
    log.debug('generation claimed', { id, attempt: claim.attempt, delivery_count: delivery.deliveryCount });
    if (claim.attempt > maxAttempts) {
      return reportFailure(job, 'too_many_attempts', `The generation was claimed ${claim.attempt} times without finishing (runners stopped or lost it); the limit is ${maxAttempts}.`);
    }

    const generated = await generate(job, claim);
    if (!generated.ok) return generated.settlement;
    const { result, model } = generated;

    signal.throwIfAborted();
    const uploadStarted = clock.now();
    const stored = await withSpan('upload', { 'itemgen.images': result.images.length }, () =>
      Promise.all(result.images.map((image, index) => upload(job, claim, index, image.png, image.seed))),
    );
    const uploadMs = clock.now() - uploadStarted;
    metrics.uploadSeconds.observe(uploadMs / 1000);

    signal.throwIfAborted();
    const images = stored.map((ref, index) => ({ ...ref, seed: result.images[index]!.seed }));
    const t = result.timingsMs;
    const completed = await gateway.complete(id, claim.attempt, images, {
      signal,
      ran: {
        prompt: result.prompt,
        negative_prompt: result.negativePrompt,
        model: { name: model.settings.name, hash: model.hash },
        execution_provider: model.executionProvider,
      },
      timings: {
        claim_ms: ms(claimMs),
        text_encoder_ms: ms(t.textEncoder),
        denoising_ms: ms(t.denoise),
        decode_ms: ms(t.decode),
        png_ms: ms(t.png),
        upload_ms: ms(uploadMs),
      },
    });
    if (!completed.ok) {
      throwIfRefused(completed, 'complete');
      return stopped(job, completed, 'complete');
    }
    log.info('generation completed', {
      id,
      attempt: claim.attempt,
      images: images.length,
      generation_ms: Math.round(result.timingsMs.total),
      upload_ms: Math.round(clock.now() - uploadStarted),
    });
    return { action: 'ack', outcome: 'completed', reason: 'the images are stored and the gateway has them' };
  }

  /** The gateway said stop (canceled, finished elsewhere, lease lost): the job's work is aborted; the first answer counts. */
  function stopJob(job: Job, refusal: Refusal): void {
    if (job.stopReason) return;
    job.stopReason = refusal;
    job.controller.abort(refusal);
  }

  /**
   * Runs the pipeline, reporting progress; the job ends on the way when the gateway says stop or
   * the pipeline fails. The prompt's encoding and the generation each wait for their turn on the
   * model (decision 19); until the generation's, the claim is kept (keepClaim). The PNGs are made
   * after the model is free for the next job.
   */
  async function generate(job: Job, claim: Claim): Promise<Generated> {
    const { signal } = job.controller;
    let model: Model;
    try {
      model = await options.model();
    } catch (err) {
      throw new TransientJobError(`the model could not be loaded: ${(err as Error).message}`, { cause: err });
    }
    // Claimed as the runner began to stop: handed back now rather than after the jobs before it.
    if (!taking()) job.controller.abort(new HandedBackError());
    signal.throwIfAborted();
    job.phase = 'waiting';
    const waiting = keepClaim(job, claim);
    const reporter = createProgressReporter({
      intervalMs: progressIntervalMs,
      clock,
      // After the wait's last report is answered: step 1 must not be overwritten by a late step 0.
      send: async (step, total, preview) => {
        await waiting.answered();
        return gateway.progress(claim.id, claim.attempt, step, total, { signal, ...(preview ? { preview } : {}) });
      },
      onStop: (refusal) => stopJob(job, refusal),
      onError: (err) => {
        if (!signal.aborted) log.warn('progress report failed; generation continues', { id: claim.id, err });
      },
    });
    let result: Txt2ImgResult | null = null;
    try {
      const encoded = await textLane.run(() => encodeRequestPrompt(model, claim.params), { signal });
      const decoded = await modelLane.run(
        () => {
          waiting.stop();
          job.phase = 'generating';
          return runModel(job, claim, encoded, reporter);
        },
        { signal, onNext: waiting.check },
      );
      job.phase = 'finishing';
      result = await encodeDecodedImages(decoded);
      // The last step's answer decides whether the images are worth storing.
      await reporter.finish();
    } catch (err) {
      waiting.stop();
      reporter.close();
      if (!(err instanceof GenerationAbortedError)) return { ok: false, settlement: await pipelineFailed(job, claim, err) };
      // Aborted without a word from the gateway: the runner is stopping.
      if (!job.stopReason) throw signal.reason;
    }
    // The gateway said stop, during the wait, the steps or in answer to the last one; past this, the pipeline finished.
    if (job.stopReason) {
      throwIfRefused(job.stopReason, 'progress');
      return { ok: false, settlement: stopped(job, job.stopReason, 'progress') };
    }
    metrics.generationSeconds.observe(result!.timingsMs.total / 1000);
    return { ok: true, result: result!, model };
  }

  /**
   * The job's turn on the model: denoising and the VAE, reporting steps. Past half its steps it
   * tells the next in line, whose last check with the gateway then overlaps this generation's end.
   */
  function runModel(job: Job, claim: Claim, encoded: EncodedPrompt, reporter: ProgressReporter): Promise<DecodedImages> {
    const previews = createPreviewThrottle(options.previewIntervalMs ?? 500, clock);
    if (denoisingSteps(claim.params) <= 2) modelLane.endingSoon();
    let lastStep = clock.now();
    return generateFromEmbeddings(encoded, {
      signal: job.controller.signal,
      onStep: (step, total, preview) => {
        const now = clock.now();
        metrics.stepSeconds.observe((now - lastStep) / 1000);
        lastStep = now;
        if (step * 2 >= total) modelLane.endingSoon();
        reporter.step(step, total, previews.due() ? renderPreview(claim, preview) : undefined);
      },
    });
  }

  /**
   * A claimed job waiting for the model keeps its lease: a step-0 progress report every third of
   * the lease, and one when the generation before it nears its end (`check`), so that a cancel
   * that came meanwhile is heard before the job runs, without the model waiting for the answer. A
   * stop answer aborts the job, which leaves the line.
   */
  function keepClaim(job: Job, claim: Claim) {
    const { signal } = job.controller;
    const total = denoisingSteps(claim.params);
    const ended = new AbortController();
    let inFlight: Promise<void> | null = null;
    const report = () => {
      if (inFlight || ended.signal.aborted) return;
      inFlight = gateway
        .progress(claim.id, claim.attempt, 0, total, { signal })
        .then(
          (answer) => {
            if (!answer.ok) stopJob(job, answer);
          },
          (err) => {
            if (!signal.aborted) log.warn('heartbeat failed while waiting for the model; the job waits on', { id: claim.id, err });
          },
        )
        .finally(() => {
          inFlight = null;
        });
    };
    const everyMs = (claim.leaseSeconds * 1000) / 3;
    void (async () => {
      while (!ended.signal.aborted) {
        await clock.sleep(everyMs, ended.signal);
        report();
      }
    })().catch(() => {});
    return {
      check: report,
      stop: () => ended.abort(),
      /** Resolves once the report in flight (if any) is answered. */
      answered: () => inFlight ?? Promise.resolve(),
    };
  }

  /** A preview is a nicety: one that fails to render is logged and left out, the generation goes on. */
  function renderPreview(claim: Claim, render: () => Buffer): Buffer | undefined {
    try {
      return render();
    } catch (err) {
      log.warn('preview failed; generation continues', { id: claim.id, err });
      return undefined;
    }
  }

  /** Reports what the pipeline's error means for the request; none is worth another try. */
  async function pipelineFailed(job: Job, claim: Claim, err: unknown): Promise<JobSettlement> {
    const failure = classifyPipelineError(err, claim.params);
    const fields = { id: claim.id, attempt: claim.attempt, code: failure.code, err };
    // What the request asked for is not a fault of ours: no stack trace, not an error.
    if (failure.code === 'generation_failed') log.error('pipeline error', { ...fields, stack: (err as Error).stack });
    else log.warn('generation refused by the pipeline', fields);
    return reportFailure(job, failure.code, failure.message);
  }

  async function upload(job: Job, claim: Claim, index: number, png: Buffer, seed: number): Promise<StoredImageRef> {
    try {
      return await withRetry(() => store.putImage({ generationId: claim.id, index, png, seed }), uploadRetry, {
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

  /** The gateway would not let this runner claim the job: nothing to do here. */
  function skipClaim(job: Job, refusal: Stop): JobSettlement {
    const fields = { id: job.id, code: refusal.code, delivery_count: job.delivery.deliveryCount };
    const skipped = { action: 'ack', outcome: 'skipped', reason: `claim refused: ${refusal.code}` } as const;
    switch (refusal.code) {
      case 'already_finished':
      case 'canceled':
      case 'lease_lost':
        log.info('job skipped: nothing to do', fields);
        return skipped;
      case 'not_found':
        log.warn('job skipped: the gateway knows no such generation', fields);
        return skipped;
      case 'claimed':
        // Another runner's lease is live. If that runner finishes, nothing is left to do; if it
        // stops, its lease runs out and the gateway dispatches the job again. Either way holding
        // this copy would only keep a slot idle and use up a delivery.
        log.info('job skipped: another runner holds its live lease', fields);
        return skipped;
    }
  }

  /** The gateway said stop in answer to a report: the message is done here. */
  function stopped(job: Job, refusal: Stop, during: string): JobSettlement {
    log.info('job stopped by the gateway', { id: job.id, attempt: job.claim?.attempt, code: refusal.code, during });
    return { action: 'ack', outcome: refusal.code === 'canceled' ? 'canceled' : 'skipped', reason: `the gateway answered ${during} with ${refusal.code}` };
  }

  async function reportFailure(job: Job, code: string, message: string): Promise<JobSettlement> {
    const claim = job.claim!;
    const answer = await gateway.fail(claim.id, claim.attempt, code, message, { signal: job.controller.signal });
    if (!answer.ok) {
      throwIfRefused(answer, 'fail');
      return stopped(job, answer, 'fail');
    }
    log.warn('generation failed; reported', { id: claim.id, attempt: claim.attempt, code, message });
    return { action: 'ack', outcome: 'failed', reason: `failed with ${code}` };
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
  async function retryOrGiveUp(job: Job, err: unknown): Promise<JobSettlement> {
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
    return { action: 'requeue', reason: `a failure that may pass: ${(err as Error).message}` };
  }

  const started = queue.consume(onDelivery, { prefetch: options.prefetch }).then((c) => {
    consumer = c;
    if (state === 'starting') state = 'running';
  });
  started.catch((err) => log.error('could not start consuming', { err }));

  return {
    started,
    state: () => state,
    modelBusyMs: () => busy.busyMs(),
    stop(graceMs: number) {
      stopping ??= (async () => {
        state = 'stopping';
        await started.catch(() => {});
        // Jobs still waiting for the model go back at once: another runner can start them now.
        const waiting = [...active.keys()].filter((job) => job.phase === 'waiting');
        if (waiting.length) log.info('handing back the jobs waiting for the model', { jobs: waiting.length });
        for (const job of waiting) job.controller.abort(new HandedBackError());
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
