// The runner process's configuration, parsed once at start from the environment into a typed
// object, the same way as the gateway's (src/gateway/config.ts): invalid configuration fails fast with
// every problem listed. Queue and storage variables mean what they mean to the gateway
// (src/core/config.ts sharedEnv).
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import type { LogFormat } from '../core/log.ts';
import type { TelemetryConfig } from '../telemetry/index.ts';
import { amqpCaCompanion, envInt as int, envUrl, logFormat, parseEnv, requireCompanions, sharedEnv, telemetryConfig } from '../core/config.ts';
import type { RetryPolicy } from '../core/retry.ts';
import type { ExecutionProvider } from './pipeline/model.ts';

const runnerEnv = {
  ...sharedEnv,
  MODEL_DIR: z.string().trim().min(1).optional(),
  GATEWAY_URL: envUrl(/^https?:$/).default('http://127.0.0.1:8080'),
  RUNNER_TOKEN: z.string({ error: 'is required (the same token as the gateway RUNNER_TOKEN)' }).min(16, 'must be at least 16 characters'),
  RUNNER_ID: z.string().trim().min(1).max(200).optional(),
  // 2: the next job is claimed while one generates (docs/architecture.md, decision 19); 1 works one at a time.
  RUNNER_PREFETCH: int(2, 1, 64),
  EXECUTION_PROVIDER: z.enum(['auto', 'cuda', 'cpu']).default('auto'),
  INTRA_OP_THREADS: int(0, 0, 1024),
  INTER_OP_THREADS: int(0, 0, 1024),
  RUNNER_GRACE_SECONDS: int(120, 0, 86_400),
  RUNNER_MAX_ATTEMPTS: int(3, 1, 100),
  RUNNER_PROGRESS_INTERVAL_MS: int(250, 0, 60_000),
  RUNNER_REQUEST_TIMEOUT_MS: int(10_000, 100, 600_000),
  // Time bounds the retries (RUNNER_RETRY_MAX_SECONDS), not their count: a gateway restart takes seconds,
  // and a report given up too soon makes a finished job run again.
  RUNNER_RETRY_ATTEMPTS: int(20, 1, 100),
  RUNNER_RETRY_MAX_SECONDS: int(30, 1, 3600),
  RUNNER_HEALTH_HOST: z.string().trim().min(1).default('0.0.0.0'),
  RUNNER_HEALTH_PORT: int(8081, 0, 65535),
};

export interface RunnerConfig {
  /** The model folder; unset: the tiny model, generated into `<dataDir>/tiny-model`. */
  modelDir: string | undefined;
  dataDir: string;
  gatewayUrl: string;
  runnerToken: string;
  runnerId: string;
  amqpUrl: string | undefined;
  /** With an amqps URL: the CA certificates the broker's chain is verified against (default: Node's). */
  amqpCaCert: string | undefined;
  /** Longest a broker connection may take to open; then it is tried again. */
  amqpConnectTimeoutMs: number;
  amqpPrefix: string;
  deliveryLimit: number;
  /** Job messages held at once: one on the model, the next claimed and waiting, the last finishing. */
  prefetch: number;
  executionProvider: ExecutionProvider;
  intraOpThreads: number;
  interOpThreads: number;
  /** How long a stopping runner lets its current jobs finish before handing them back. */
  graceMs: number;
  /** Claims of one generation (by any runner) before it is failed with `too_many_attempts`. */
  maxAttempts: number;
  progressIntervalMs: number;
  requestTimeoutMs: number;
  retry: RetryPolicy;
  healthHost: string;
  healthPort: number;
  gcsBucket: string | undefined;
  gcsSignedUrlSeconds: number;
  gcsPublic: boolean;
  logLevel: 'debug' | 'info' | 'warn' | 'error' | 'silent';
  /** GOOGLE_CLOUD_PROJECT and LOG_PROMPTS: how log lines are written. */
  logFormat: LogFormat;
  /** OTEL_*: traces (src/telemetry/). */
  telemetry: TelemetryConfig;
}

export function parseRunnerConfig(env: Record<string, string | undefined> = process.env): RunnerConfig {
  const e = parseEnv(runnerEnv, env);
  requireCompanions([amqpCaCompanion(e)]);
  const retryMaxMs = e.RUNNER_RETRY_MAX_SECONDS * 1000;
  return {
    modelDir: e.MODEL_DIR === undefined ? undefined : path.resolve(e.MODEL_DIR),
    dataDir: path.resolve(e.DATA_DIR),
    gatewayUrl: e.GATEWAY_URL.replace(/\/+$/, ''),
    runnerToken: e.RUNNER_TOKEN,
    runnerId: e.RUNNER_ID ?? `${os.hostname()}-${process.pid}`,
    amqpUrl: e.AMQP_URL,
    amqpCaCert: e.AMQP_CA_CERT,
    amqpConnectTimeoutMs: e.AMQP_CONNECT_TIMEOUT_MS,
    amqpPrefix: e.AMQP_PREFIX,
    deliveryLimit: e.QUEUE_DELIVERY_LIMIT,
    prefetch: e.RUNNER_PREFETCH,
    executionProvider: e.EXECUTION_PROVIDER,
    intraOpThreads: e.INTRA_OP_THREADS,
    interOpThreads: e.INTER_OP_THREADS,
    graceMs: e.RUNNER_GRACE_SECONDS * 1000,
    maxAttempts: e.RUNNER_MAX_ATTEMPTS,
    progressIntervalMs: e.RUNNER_PROGRESS_INTERVAL_MS,
    requestTimeoutMs: e.RUNNER_REQUEST_TIMEOUT_MS,
    retry: { attempts: e.RUNNER_RETRY_ATTEMPTS, baseDelayMs: 100, maxDelayMs: Math.min(5000, retryMaxMs), maxElapsedMs: retryMaxMs },
    healthHost: e.RUNNER_HEALTH_HOST,
    healthPort: e.RUNNER_HEALTH_PORT,
    gcsBucket: e.GCS_BUCKET,
    gcsSignedUrlSeconds: e.GCS_SIGNED_URL_SECONDS,
    gcsPublic: e.GCS_PUBLIC === 'true',
    logLevel: e.LOG_LEVEL,
    logFormat: logFormat(e),
    telemetry: telemetryConfig(e),
  };
}
