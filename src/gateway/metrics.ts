// Prometheus metrics of one gateway process, on a registry of its own (tests build several apps).
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { DeadLetterReason } from '../queue/types.ts';
import type { AttemptOutcome } from '../webhooks/deliverer.ts';

// Every label value of the rare-event counters, exported at 0 from the start: a series born at 1
// has no earlier sample, so the alerts' increase() would miss the first dead letter or failed
// webhook of every new instance. The records list every value the types allow.
const DEAD_LETTER_REASONS = Object.keys({ delivery_limit: 0, rejected: 0 } satisfies Record<DeadLetterReason, 0>) as DeadLetterReason[];
const ATTEMPT_OUTCOMES = Object.keys({ delivered: 0, retrying: 0, failed: 0, refused: 0, gave_up: 0 } satisfies Record<AttemptOutcome, 0>) as AttemptOutcome[];

export interface KeyUsageRow {
  apiKeyId: string;
  name: string;
  unfinished: number;
  unfinishedCost: number;
}

/**
 * The size classes end-to-end latency is told apart by: a generation's time grows with its pixels,
 * so one latency for all sizes would hide a slow small one behind the large ones. By pixel count,
 * at most 256×256, at most 512×512, and larger.
 */
export const SIZE_CLASSES = [
  { size: 'small', maxPixels: 256 * 256 },
  { size: 'medium', maxPixels: 512 * 512 },
  { size: 'large', maxPixels: Infinity },
] as const;

export function sizeClass(width: number, height: number): (typeof SIZE_CLASSES)[number]['size'] {
  return SIZE_CLASSES.find((c) => width * height <= c.maxPixels)!.size;
}

/**
 * `keyUsage` reads every key's unfinished generations and their cost at each scrape, and
 * `oldestPendingAge` the wait of the oldest pending generation: both from the database, so shared
 * by all instances (any one's /metrics tells the same).
 */
export function createGatewayMetrics(
  brokerConnected: () => boolean,
  keyUsage: () => Promise<KeyUsageRow[]> = async () => [],
  oldestPendingAge: () => Promise<number> = async () => 0,
) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const deadLettered = new Counter({
    name: 'itemgen_generations_dead_lettered_total',
    help: 'Generations failed because their message was dead-lettered.',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  for (const reason of DEAD_LETTER_REASONS) deadLettered.inc({ reason }, 0);
  const webhookDeliveries = new Counter({
    name: 'itemgen_webhook_deliveries_total',
    help: 'Webhook attempts by outcome: delivered, retrying, failed (not retryable), refused (target policy), gave_up (out of retries).',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  for (const outcome of ATTEMPT_OUTCOMES) webhookDeliveries.inc({ outcome }, 0);
  return {
    registry,
    httpRequests: new Counter({
      name: 'itemgen_http_requests_total',
      help: 'HTTP requests by route and status code.',
      labelNames: ['method', 'route', 'status'] as const,
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: 'itemgen_http_request_duration_seconds',
      help: 'HTTP request latency by route.',
      labelNames: ['method', 'route'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    submitted: new Counter({ name: 'itemgen_generations_submitted_total', help: 'Generations accepted.', registers: [registry] }),
    submittedCost: new Counter({
      name: 'itemgen_generation_cost_submitted_total',
      help: 'Cost units of the generations this instance accepted (core/request.ts generationCost), by key.',
      labelNames: ['key_id'] as const,
      registers: [registry],
    }),
    keyUnfinished: usageGauge(registry, 'itemgen_key_unfinished_generations', 'Unfinished generations per key.', keyUsage, (r) => r.unfinished),
    keyUnfinishedCost: usageGauge(registry, 'itemgen_key_unfinished_cost', "Cost units of each key's unfinished generations (its compute budget in use).", keyUsage, (r) => r.unfinishedCost),
    dispatched: new Counter({
      name: 'itemgen_generations_dispatched_total',
      help: 'Job messages confirmed by the broker.',
      registers: [registry],
    }),
    redispatched: new Counter({
      name: 'itemgen_generations_redispatched_total',
      help: 'Processing generations dispatched again because their lease ran out (their runner stopped).',
      registers: [registry],
    }),
    dispatchErrors: new Counter({
      name: 'itemgen_dispatch_errors_total',
      help: 'Dispatch batches that could not be published (retried later).',
      registers: [registry],
    }),
    dispatchBatch: new Histogram({
      name: 'itemgen_dispatch_batch_size',
      help: 'Messages per dispatch batch.',
      buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500],
      registers: [registry],
    }),
    deadLettered,
    webhookDeliveries,
    oldestPendingAge: new Gauge({
      name: 'itemgen_oldest_pending_generation_age_seconds',
      help: 'How long the oldest pending generation has waited for a runner (0: none waits). Read from the database at each scrape.',
      registers: [registry],
      async collect() {
        try {
          this.set(await oldestPendingAge());
        } catch {
          // The database is away: the last value stands, the scrape still answers.
        }
      },
    }),
    timeToFirstStep: new Histogram({
      name: 'itemgen_time_to_first_step_seconds',
      help: "From submit to a runner's first progress step (queue wait, claim, model and text encoder): what a client waits before seeing anything happen.",
      buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
      registers: [registry],
    }),
    endToEnd: new Histogram({
      name: 'itemgen_generation_duration_seconds',
      help: 'From submit to completed, by size class (small: at most 256x256 pixels, medium: at most 512x512, large: larger).',
      labelNames: ['size'] as const,
      buckets: [1, 2.5, 5, 10, 20, 30, 60, 120, 240, 480, 900],
      registers: [registry],
    }),
    brokerConnected: new Gauge({
      name: 'itemgen_broker_connected',
      help: '1 while the gateway can publish to the broker.',
      registers: [registry],
      collect() {
        this.set(brokerConnected() ? 1 : 0);
      },
    }),
    thumbnailsRendered: new Counter({
      name: 'itemgen_thumbnails_rendered_total',
      help: 'Gallery thumbnails made from a stored image (src/gateway/thumbnails.ts); each once, later requests read the stored one.',
      registers: [registry],
    }),
  };
}

export type GatewayMetrics = ReturnType<typeof createGatewayMetrics>;

function usageGauge(registry: Registry, name: string, help: string, read: () => Promise<KeyUsageRow[]>, value: (r: KeyUsageRow) => number) {
  return new Gauge({
    name,
    help,
    labelNames: ['key_id', 'key_name'] as const,
    registers: [registry],
    async collect() {
      let rows: KeyUsageRow[];
      try {
        rows = await read();
      } catch {
        return; // the database is away: the last values stand, the scrape still answers
      }
      this.reset();
      for (const r of rows) this.set({ key_id: r.apiKeyId, key_name: r.name }, value(r));
    },
  });
}

/**
 * GET /metrics on loopback only, without the runner token: for a collector in the same network
 * namespace (the Managed Prometheus sidecar of the Cloud Run instance, infra/gateway-service.ts),
 * which cannot send a token. Nothing off the machine reaches a loopback address, and on Cloud Run
 * only the main port receives requests.
 */
export async function serveMetricsOnLoopback(registry: Registry, port: number): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || new URL(req.url ?? '/', 'http://metrics').pathname !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('only GET /metrics here\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics unavailable: ${err.message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const { port: bound } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${bound}/metrics`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
