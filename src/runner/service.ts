// Wires a runner process from its configuration: the model (or the generated tiny one), image
// storage, the gateway client, the work queue (RabbitMQ, or the embedded mode's in-process queue
// handed in), the worker, and the health/metrics server. Used by the entry points and the tests.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { ConfigError } from '../core/config.ts';
import { cleanupStack } from '../core/cleanup.ts';
import { createLogger, type Logger } from '../core/log.ts';
import { connectRabbitMq } from '../queue/rabbitmq.ts';
import type { JobQueue } from '../queue/types.ts';
import { openImageStore } from '../storage/index.ts';
import type { ImageStore } from '../storage/types.ts';
import type { RunnerConfig } from './config.ts';
import { createGatewayClient, GatewayUnavailableError, type GatewayClient } from './gateway-client.ts';
import { startHealthServer } from './health.ts';
import { createRunnerMetrics, type RunnerMetrics } from './metrics.ts';
import { loadModel } from './pipeline/model.ts';
import { registerModel } from './register-model.ts';
import { writeTinyModel } from './pipeline/tiny-model.ts';
import { startTelemetry } from '../telemetry/index.ts';
import { startWorker, type Worker } from './worker.ts';

export interface RunnerOverrides {
  /** A queue to consume instead of connecting to AMQP_URL (the embedded mode's in-process queue); the caller closes it. */
  queue?: JobQueue;
  store?: ImageStore;
  fetch?: typeof fetch;
  log?: Logger;
}

export interface Runner {
  worker: Worker;
  /** Resolves once the model's registration with the gateway is done or given up. */
  registered: Promise<void>;
  metrics: RunnerMetrics;
  gateway: GatewayClient;
  /** Where /healthz and /metrics are served. */
  healthUrl: string;
  modelDir: string;
  /** Stops the worker (current jobs get `graceMs`, default the configured grace), then closes everything. */
  close(graceMs?: number): Promise<void>;
}

export async function startRunner(config: RunnerConfig, overrides: RunnerOverrides = {}): Promise<Runner> {
  const log = overrides.log ?? createLogger(config.logLevel, 'runner', config.logFormat);
  if (!overrides.queue && !config.amqpUrl) {
    throw new ConfigError('AMQP_URL is required: a runner consumes the RabbitMQ work queue (`npm start` runs one in-process instead)');
  }
  const metrics = createRunnerMetrics();
  let worker: Worker | null = null;
  const health = await startHealthServer({
    host: config.healthHost,
    port: config.healthPort,
    state: () => worker?.state() ?? 'starting',
    registry: metrics.registry,
  });
  const cleanup = cleanupStack(log);
  cleanup.push(() => health.close());
  const closeAll = () => cleanup.close();
  try {
    // Stopped after the worker and the queue (pushed before them), so their spans are exported.
    cleanup.push(await startTelemetry(config.telemetry, 'itemgen-runner', (detail) => log.warn('tracing SDK warning', { detail })));
    const modelDir = config.modelDir ?? (await ensureTinyModel(path.join(config.dataDir, 'tiny-model'), log));
    const modelOptions = {
      executionProvider: config.executionProvider,
      intraOpThreads: config.intraOpThreads,
      interOpThreads: config.interOpThreads,
      log,
    };
    // Loaded before consuming: a broken model folder stops the runner at start, not job by job.
    const model = await loadModel(modelDir, modelOptions);
    log.info('model loaded', { dir: modelDir, hash: model.hash.slice(0, 10), execution_provider: model.executionProvider });

    const store = overrides.store ?? openImageStore(config);
    const clientOptions = {
      baseUrl: config.gatewayUrl,
      token: config.runnerToken,
      timeoutMs: config.requestTimeoutMs,
      ...(overrides.fetch ? { fetch: overrides.fetch } : {}),
      log,
    };
    await checkToken(createGatewayClient({ ...clientOptions, retry: { ...config.retry, attempts: 1 } }), config, log);
    const gateway = createGatewayClient({
      ...clientOptions,
      retry: config.retry,
      onRetry: (operation) => metrics.gatewayRetries.inc({ operation }),
    });
    const registration = new AbortController();
    const registered = registerModel(gateway, model, { log, signal: registration.signal });
    cleanup.push(async () => {
      registration.abort();
      await registered;
    });

    let queue = overrides.queue;
    if (!queue) {
      const connected = await connectRabbitMq({
        url: config.amqpUrl!,
        caCert: config.amqpCaCert,
        connectTimeoutMs: config.amqpConnectTimeoutMs,
        prefix: config.amqpPrefix,
        deliveryLimit: config.deliveryLimit,
        log,
      });
      cleanup.push(() => connected.close());
      queue = connected;
    }

    const running = startWorker({
      queue,
      gateway,
      model: () => loadModel(modelDir, modelOptions),
      store,
      runnerId: config.runnerId,
      prefetch: config.prefetch,
      progressIntervalMs: config.progressIntervalMs,
      maxAttempts: config.maxAttempts,
      deliveryLimit: config.deliveryLimit,
      uploadRetry: config.retry,
      log,
      metrics,
    });
    worker = running;
    cleanup.push(() => running.stop(0));
    await running.started;
    log.info('runner consuming', {
      runner_id: config.runnerId,
      queue: queue.kind,
      prefetch: config.prefetch,
      gateway: config.gatewayUrl,
      store: store.kind,
      health: health.url,
    });

    return {
      worker: running,
      registered,
      metrics,
      gateway,
      healthUrl: health.url,
      modelDir,
      async close(graceMs = config.graceMs) {
        await running.stop(graceMs);
        await closeAll();
      },
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

/**
 * The embedded default's model: the tiny random one, generated on first start. Written beside its
 * final place and renamed, so a runner killed halfway never leaves a partial folder behind.
 */
async function ensureTinyModel(dir: string, log: Logger): Promise<string> {
  const exists = await fs.stat(path.join(dir, 'model_index.json')).then(
    () => true,
    () => false,
  );
  if (!exists) {
    const tmp = `${dir}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await writeTinyModel(tmp, { seed: 0 });
      await fs.rename(tmp, dir);
      log.info('tiny model generated', { dir });
    } catch (err) {
      // Another runner on the same DATA_DIR got there first: its folder is as good.
      if (!['ENOTEMPTY', 'EEXIST'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err;
    } finally {
      await fs.rm(tmp, { recursive: true, force: true });
    }
  }
  log.warn('MODEL_DIR is not set: generating with the tiny test model, whose images are noise; point MODEL_DIR at a real model folder', { dir });
  return dir;
}

/** A wrong RUNNER_TOKEN would fail every job; say so at start. An unreachable gateway is only a warning: it may start later. */
async function checkToken(probe: GatewayClient, config: RunnerConfig, log: Logger): Promise<void> {
  let answer;
  try {
    answer = await probe.claim('00000000-0000-4000-8000-000000000000', config.runnerId);
  } catch (err) {
    if (!(err instanceof GatewayUnavailableError)) throw err;
    log.warn('gateway not reachable yet; jobs wait until it is', { gateway: config.gatewayUrl, err });
    return;
  }
  if (answer.ok || answer.code !== 'refused') return;
  if (answer.status === 401 || answer.status === 403) {
    throw new ConfigError(`RUNNER_TOKEN is not accepted by the gateway at ${config.gatewayUrl} (${answer.status} ${answer.problemCode})`);
  }
  log.warn('unexpected answer from the gateway', { gateway: config.gatewayUrl, status: answer.status, code: answer.problemCode });
}
