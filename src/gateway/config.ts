// The gateway's configuration, parsed once at start from the environment into a typed object:
// its own variables (listening, database, tokens, limits, dispatch) and the shared ones
// (core/config.ts). Invalid configuration fails fast with every problem listed.
import path from 'node:path';
import { z } from 'zod';
import type { LogFormat } from '../core/log.ts';
import type { TelemetryConfig } from '../telemetry/index.ts';
import { amqpCaCompanion, envInt, envPem, envUrl, logFormat, parseEnv, requireCompanions, sharedEnv, telemetryConfig } from '../core/config.ts';
import type { OpenDbOptions } from '../store/openDb.ts';
import { parseAllowList } from '../webhooks/index.ts';

/** A rate limit as `COUNT/SECONDS` (a bucket of COUNT tokens refilling in SECONDS), or `off`. */
const ratePolicy = (name: string, def: string) =>
  z
    .string()
    .trim()
    .default(def)
    .refine((v) => v === 'off' || /^\d{1,7}\/\d{1,4}$/.test(v), 'COUNT/SECONDS (e.g. 120/60) or off')
    .transform((v) => {
      if (v === 'off') return null;
      const [capacity, windowSeconds] = v.split('/').map(Number) as [number, number];
      return { name, capacity, windowSeconds };
    })
    .refine((p) => p === null || (p.capacity >= 1 && p.windowSeconds >= 1 && p.windowSeconds <= 3600), 'COUNT at least 1, SECONDS from 1 to 3600');

const gatewayEnv = {
  ...sharedEnv,
  HOST: z.string().trim().min(1).default('127.0.0.1'),
  PORT: envInt(8080, 0, 65535),
  METRICS_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  DATABASE_URL: envUrl(/^postgres(ql)?:$/),
  DATABASE_PASSWORD: z.string().max(1024, 'at most 1024 characters').optional().refine((v) => v === undefined || !v.includes('\0'), 'must not contain NUL'),
  DATABASE_CA_CERT: envPem(),
  DATABASE_TLS_SERVER_NAME: z
    .string()
    .trim()
    .optional()
    .refine((v) => v === undefined || /^[A-Za-z0-9][A-Za-z0-9.:_-]{0,252}$/.test(v), 'a host name or a name like project:instance (letters, digits, . : _ -, at most 253)'),
  DATABASE_POOL_SIZE: envInt(20, 1, 500),
  DATABASE_CONNECT_TIMEOUT_MS: envInt(2000, 100, 60_000),
  DATABASE_QUERY_TIMEOUT_MS: envInt(2000, 100, 600_000),
  RUNNER_TOKEN: z.string().optional().refine((v) => v === undefined || v.length >= 16, 'must be at least 16 characters'),
  ADMIN_TOKEN: z.string().optional().refine((v) => v === undefined || v.length >= 16, 'must be at least 16 characters'),
  LEASE_SECONDS: envInt(60, 5, 3600),
  DEFAULT_MAX_UNFINISHED: envInt(100, 1, 1_000_000),
  DEFAULT_MAX_UNFINISHED_COST: envInt(40_000, 1, 1_000_000_000),
  MAX_GENERATION_COST: envInt(6_400, 1, 1_000_000),
  API_KEY_CACHE_MS: envInt(5000, 0, 600_000),
  MAX_STREAMS_PER_KEY: envInt(32, 1, 100_000),
  RETENTION_DAYS: envInt(0, 0, 36_500),
  RATE_LIMIT_SUBMIT: ratePolicy('submit', '120/60'),
  RATE_LIMIT_REQUEST: ratePolicy('request', '1200/60'),
  RATE_LIMIT_ADDRESS: ratePolicy('address', '60/60'),
  TRUSTED_PROXY_HOPS: envInt(0, 0, 10),
  MAX_BODY_BYTES: envInt(65536, 1024, 1_048_576),
  HEADERS_TIMEOUT_MS: envInt(10_000, 100, 300_000),
  BODY_TIMEOUT_MS: envInt(10_000, 100, 300_000),
  DISPATCH_BATCH: envInt(200, 1, 5000),
  DISPATCH_SWEEP_MS: envInt(5000, 100, 600_000),
  DISPATCH_LINGER_MS: envInt(5, 0, 1000),
  PUBLIC_URL: envUrl(/^https?:$/),
  ALLOWED_HOSTS: z
    .string()
    .optional()
    .transform((v) => (v ?? '').split(',').map((h) => h.trim().toLowerCase()).filter(Boolean))
    .refine((hosts) => hosts.every((h) => /^[a-z0-9.-]+$|^\[[0-9a-f:.]+\]$/.test(h)), 'comma-separated host names, without ports'),
  WEBHOOK_ALLOW_PRIVATE: z
    .string()
    .optional()
    .refine((v) => {
      try {
        parseAllowList(v);
        return true;
      } catch {
        return false;
      }
    }, 'comma-separated CIDRs, e.g. 10.1.0.0/16,fd00::/8'),
  WEBHOOK_TIMEOUT_MS: envInt(10_000, 100, 60_000),
  WEBHOOK_RETRY_BASE_MS: envInt(5_000, 1, 600_000),
  WEBHOOK_RETRY_WINDOW_MS: envInt(86_400_000, 1_000, 7 * 86_400_000),
  WEBHOOK_CONCURRENCY: envInt(8, 1, 256),
  WEBHOOK_POLL_MS: envInt(5_000, 10, 600_000),
};

export interface Config {
  host: string;
  port: number;
  /** Also serve /metrics on 127.0.0.1 at this port, without the token (a collector sidecar); unset: not. */
  metricsPort: number | undefined;
  /** Whether HOST only accepts connections from this machine (the open embedded mode is allowed only then). */
  loopback: boolean;
  databaseUrl: string | undefined;
  /** Used instead of the URL's password (a secret apart from the URL). */
  databasePassword: string | undefined;
  /** TLS required, the server's chain verified against `ca` and its name against `serverName` (default: the URL's host). */
  databaseTls: { ca: string; serverName: string | undefined } | undefined;
  databasePoolSize: number;
  /** Longest wait for a new database connection. */
  databaseConnectTimeoutMs: number;
  /** Longest a statement may take, waiting for a pooled connection included (then 503). */
  databaseQueryTimeoutMs: number;
  dataDir: string;
  amqpUrl: string | undefined;
  /** With an amqps URL: the CA certificates the broker's chain is verified against (default: Node's). */
  amqpCaCert: string | undefined;
  /** Longest a broker connection (TCP, TLS, AMQP handshake) may take to open; then it is tried again. */
  amqpConnectTimeoutMs: number;
  amqpPrefix: string;
  deliveryLimit: number;
  runnerToken: string | undefined;
  /** Bearer token of the admin API; embedded (PGlite) without it, one is generated per start. */
  adminToken: string | undefined;
  leaseSeconds: number;
  defaultMaxUnfinished: number;
  /** Cap on the cost of a key's unfinished generations, for keys without their own and the open mode. */
  defaultMaxUnfinishedCost: number;
  /** Cap on the cost of one generation (core/request.ts generationCost). */
  maxGenerationCost: number;
  apiKeyCacheMs: number;
  /** Event streams one key may hold open at once, over all gateway instances. */
  maxStreamsPerKey: number;
  /** Finished generations older than this many days are deleted with their images; null (RETENTION_DAYS absent or 0): kept forever. */
  retentionDays: number | null;
  /** Token buckets: submits per key, other requests per key, requests without a valid key per client address; null: off. */
  rateLimits: Record<'submit' | 'request' | 'address', { name: string; capacity: number; windowSeconds: number } | null>;
  /** Proxies in front of the gateway that append to X-Forwarded-For (Cloud Run: 1); 0: the peer address is the client's. */
  trustedProxyHops: number;
  maxBodyBytes: number;
  /** Longest a client may take to send a request's headers (Node's headersTimeout). */
  headersTimeoutMs: number;
  /** Longest a request body may take to arrive after its headers (then 408). */
  bodyTimeoutMs: number;
  dispatchBatch: number;
  dispatchSweepMs: number;
  /** How long a lone job waits for company before it is published (fewer, larger batches). */
  dispatchLingerMs: number;
  publicUrl: string | undefined;
  /** Host names requests may carry when PUBLIC_URL is unset (links are then built from the Host header). */
  allowedHosts: string[];
  /** Images in this GCS bucket; in `DATA_DIR/images` when unset. */
  gcsBucket: string | undefined;
  gcsSignedUrlSeconds: number;
  /** The bucket is readable by anyone: stable public links instead of signed ones. */
  gcsPublic: boolean;
  logLevel: 'debug' | 'info' | 'warn' | 'error' | 'silent';
  /** GOOGLE_CLOUD_PROJECT and LOG_PROMPTS: how log lines are written. */
  logFormat: LogFormat;
  /** OTEL_*: traces (src/telemetry/). */
  telemetry: TelemetryConfig;
  /** Webhooks (src/webhooks/): CIDRs allowed although private; attempt timeout; retry schedule; attempts in flight; fallback poll. */
  webhooks: { allowPrivate: string | undefined; timeoutMs: number; retryBaseMs: number; retryWindowMs: number; concurrency: number; pollMs: number };
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export function parseConfig(env: Record<string, string | undefined> = process.env): Config {
  const e = parseEnv(gatewayEnv, env);
  requireCompanions([
    ['DATABASE_PASSWORD', e.DATABASE_PASSWORD, 'DATABASE_URL', e.DATABASE_URL],
    ['DATABASE_CA_CERT', e.DATABASE_CA_CERT, 'DATABASE_URL', e.DATABASE_URL],
    ['DATABASE_TLS_SERVER_NAME', e.DATABASE_TLS_SERVER_NAME, 'DATABASE_CA_CERT', e.DATABASE_CA_CERT],
    amqpCaCompanion(e),
  ]);
  return {
    host: e.HOST,
    port: e.PORT,
    metricsPort: e.METRICS_PORT,
    loopback: isLoopback(e.HOST),
    databaseUrl: e.DATABASE_URL,
    databasePassword: e.DATABASE_PASSWORD,
    databaseTls: e.DATABASE_CA_CERT ? { ca: e.DATABASE_CA_CERT, serverName: e.DATABASE_TLS_SERVER_NAME } : undefined,
    databasePoolSize: e.DATABASE_POOL_SIZE,
    databaseConnectTimeoutMs: e.DATABASE_CONNECT_TIMEOUT_MS,
    databaseQueryTimeoutMs: e.DATABASE_QUERY_TIMEOUT_MS,
    dataDir: path.resolve(e.DATA_DIR),
    amqpUrl: e.AMQP_URL,
    amqpCaCert: e.AMQP_CA_CERT,
    amqpConnectTimeoutMs: e.AMQP_CONNECT_TIMEOUT_MS,
    amqpPrefix: e.AMQP_PREFIX,
    deliveryLimit: e.QUEUE_DELIVERY_LIMIT,
    runnerToken: e.RUNNER_TOKEN,
    adminToken: e.ADMIN_TOKEN,
    leaseSeconds: e.LEASE_SECONDS,
    defaultMaxUnfinished: e.DEFAULT_MAX_UNFINISHED,
    defaultMaxUnfinishedCost: e.DEFAULT_MAX_UNFINISHED_COST,
    maxGenerationCost: e.MAX_GENERATION_COST,
    apiKeyCacheMs: e.API_KEY_CACHE_MS,
    maxStreamsPerKey: e.MAX_STREAMS_PER_KEY,
    retentionDays: e.RETENTION_DAYS === 0 ? null : e.RETENTION_DAYS,
    rateLimits: { submit: e.RATE_LIMIT_SUBMIT, request: e.RATE_LIMIT_REQUEST, address: e.RATE_LIMIT_ADDRESS },
    trustedProxyHops: e.TRUSTED_PROXY_HOPS,
    maxBodyBytes: e.MAX_BODY_BYTES,
    headersTimeoutMs: e.HEADERS_TIMEOUT_MS,
    bodyTimeoutMs: e.BODY_TIMEOUT_MS,
    dispatchBatch: e.DISPATCH_BATCH,
    dispatchSweepMs: e.DISPATCH_SWEEP_MS,
    dispatchLingerMs: e.DISPATCH_LINGER_MS,
    publicUrl: e.PUBLIC_URL?.replace(/\/+$/, ''),
    allowedHosts: e.ALLOWED_HOSTS,
    gcsBucket: e.GCS_BUCKET,
    gcsSignedUrlSeconds: e.GCS_SIGNED_URL_SECONDS,
    gcsPublic: e.GCS_PUBLIC === 'true',
    logLevel: e.LOG_LEVEL,
    logFormat: logFormat(e),
    telemetry: telemetryConfig(e),
    webhooks: {
      allowPrivate: e.WEBHOOK_ALLOW_PRIVATE,
      timeoutMs: e.WEBHOOK_TIMEOUT_MS,
      retryBaseMs: e.WEBHOOK_RETRY_BASE_MS,
      retryWindowMs: e.WEBHOOK_RETRY_WINDOW_MS,
      concurrency: e.WEBHOOK_CONCURRENCY,
      pollMs: e.WEBHOOK_POLL_MS,
    },
  };
}

/** How the gateway and `npm run keys` reach the configured database, alike. */
export function databaseOptions(config: Config): Omit<OpenDbOptions, 'poolSize'> {
  return {
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    connectTimeoutMs: config.databaseConnectTimeoutMs,
    queryTimeoutMs: config.databaseQueryTimeoutMs,
    password: config.databasePassword,
    tls: config.databaseTls,
  };
}
