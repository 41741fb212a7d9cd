// Prometheus metrics of one runner process, on a registry of its own (tests run several runners
// in one process, and the embedded mode runs a gateway beside it).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** What became of a job message. */
export const JOB_OUTCOMES = ['completed', 'failed', 'canceled', 'skipped', 'requeued', 'rejected'] as const;
export type JobOutcome = (typeof JOB_OUTCOMES)[number];

export function createRunnerMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const seconds = (name: string, help: string, buckets: number[]) => new Histogram({ name, help, buckets, registers: [registry] });
  const jobs = new Counter({
    name: 'itemgen_runner_jobs_total',
    help: 'Job messages handled, by outcome: completed, failed (reported), canceled, skipped (finished, unknown or claimed elsewhere), requeued, rejected (unreadable, dead-lettered).',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  for (const outcome of JOB_OUTCOMES) jobs.inc({ outcome }, 0);
  let modelBusyMs = () => 0;
  new Counter({
    name: 'itemgen_runner_model_busy_seconds_total',
    help: "Time the model spent in a stage (text encoder, denoising, VAE), overlapping stages once; 1 − its rate is the model's idle share.",
    registers: [registry],
    // Read at scrape time from the worker's lanes, so a busy stretch that has not ended yet counts too.
    collect() {
      this.reset();
      this.inc(modelBusyMs() / 1000);
    },
  });
  return {
    /** Where itemgen_runner_model_busy_seconds_total reads from: the worker's model lanes. */
    readModelBusyFrom(source: () => number) {
      modelBusyMs = source;
    },
    registry,
    jobs,
    jobsInProgress: new Gauge({ name: 'itemgen_runner_jobs_in_progress', help: 'Job messages being worked on.', registers: [registry] }),
    queueWaitSeconds: seconds('itemgen_runner_queue_wait_seconds', 'From submit to claim, as the gateway counts it.', [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 30, 120, 600]),
    claimSeconds: seconds('itemgen_runner_claim_seconds', 'From a message delivered to its claim answered.', [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5]),
    stepSeconds: seconds('itemgen_runner_step_seconds', 'Time per denoising step.', [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]),
    generationSeconds: seconds('itemgen_runner_generation_seconds', 'The whole pipeline per job (text encoder, denoising, VAE, PNG).', [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160]),
    uploadSeconds: seconds('itemgen_runner_upload_seconds', "Storing a job's images, retries included.", [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10]),
    gatewayRetries: new Counter({
      name: 'itemgen_runner_gateway_retries_total',
      help: 'Gateway calls retried after a transient failure, by operation.',
      labelNames: ['operation'] as const,
      registers: [registry],
    }),
    uploadRetries: new Counter({ name: 'itemgen_runner_upload_retries_total', help: 'Image uploads retried after a failure.', registers: [registry] }),
  };
}

export type RunnerMetrics = ReturnType<typeof createRunnerMetrics>;
