// Wires a gateway process from its configuration: database (migrated), queue, change feed,
// dispatcher, dead-letter consumer and the HTTP server. Used by the entry points and the tests.
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { ConfigError } from '../core/config.ts';
import { cleanupStack } from '../core/cleanup.ts';
import { createLogger, type Logger } from '../core/log.ts';
import { createMemoryQueue } from '../queue/memory.ts';
import { connectRabbitMq } from '../queue/rabbitmq.ts';
import type { JobQueue } from '../queue/types.ts';
import { openImageStore } from '../storage/index.ts';
import type { ImageStore } from '../storage/types.ts';
import { groupCommit } from '../store/group-commit.ts';
import { openDb } from '../store/openDb.ts';
import type { Db } from '../store/types.ts';
import { migrate } from '../store/migrate.ts';
import { countActiveApiKeys } from '../store/sql/countActiveApiKeys.ts';
import { getOldestPendingAge } from '../store/sql/getOldestPendingAge.ts';
import { listApiKeyUsage } from '../store/sql/listApiKeyUsage.ts';
import { redispatchUnfinished } from '../store/sql/redispatchUnfinished.ts';
import { createApp } from './app.ts';
import { startChangeFeed } from './changes.ts';
import { databaseOptions, isLoopback, type Config } from './config.ts';
import { consumeDeadLetters } from './dead-letters.ts';
import type { GatewaySettings } from './deps.ts';
import { startDispatcher, type Dispatcher } from './dispatcher.ts';
import { closeServer, listen } from './http-server.ts';
import { createGatewayMetrics, serveMetricsOnLoopback } from './metrics.ts';
import { startRateLimiter } from './rate-limit.ts';
import { startRetention, type Retention } from './retention.ts';
import { startStreamSlots } from './stream-slots.ts';
import { presentGeneration } from './present.ts';
import { webBundle } from '../web/index.ts';
import { startTelemetry } from '../telemetry/index.ts';
import { parseAllowList, startDeliverer, systemResolver, type Resolver, type TargetPolicy } from '../webhooks/index.ts';

export interface Gateway {
  url: string;
  images: ImageStore;
  app: ReturnType<typeof createApp>;
  db: Db;
  queue: JobQueue;
  dispatcher: Dispatcher;
  settings: GatewaySettings;
  /** The history sweep (retention.ts), for tests to run one now. */
  retention: Retention;
  /** The loopback /metrics without a token (METRICS_PORT), or null when not served. */
  metricsUrl: string | null;
  close(): Promise<void>;
}

export interface GatewayOverrides {
  /** Database schema to use (tests); default public. */
  schema?: string;
  log?: Logger;
  sseKeepAliveMs?: number;
  /** Image store to use instead of the configured one (tests). */
  images?: ImageStore;
  /** Webhook target policy (tests): another resolver, or the policy of a gateway off loopback. */
  webhooks?: { resolve?: Resolver; allowLoopback?: boolean };
}

export async function startGateway(config: Config, overrides: GatewayOverrides = {}): Promise<Gateway> {
  const log = overrides.log ?? createLogger(config.logLevel, 'gateway', config.logFormat);
  const db = await openDb({
    ...databaseOptions(config),
    poolSize: config.databasePoolSize,
    ...(overrides.schema ? { schema: overrides.schema } : {}),
  });
  const cleanup = cleanupStack(log);
  cleanup.push(() => db.close());
  const closeAll = () => cleanup.close();
  try {
    // Stopped after everything that makes spans (pushed before them), so their spans are exported.
    cleanup.push(await startTelemetry(config.telemetry, 'itemgen-gateway', (detail) => log.warn('tracing SDK warning', { detail })));
    const applied = await migrate(db);
    if (applied.length) log.info('migrations applied', { applied });

    const keys = await countActiveApiKeys(db);
    if (!config.publicUrl && !config.loopback && config.allowedHosts.length === 0) {
      throw new ConfigError(
        `PUBLIC_URL is required when listening on ${config.host}: links in answers would otherwise copy the request's Host header (or list the host names clients use in ALLOWED_HOSTS)`,
      );
    }
    if (!config.runnerToken && !config.loopback) {
      throw new ConfigError(`RUNNER_TOKEN is required when listening on ${config.host}`);
    }
    // Without keys the API is open on loopback (this machine only). Elsewhere it starts locked,
    // so a first deploy on an empty database comes up and the first key can be made through it.
    const open = keys === 0 && config.loopback;
    const locked = keys === 0 && !config.loopback;
    if (open) {
      log.warn('no API keys configured: the API is open to this machine only (loopback) until the first key is created', {
        host: config.host,
      });
    }
    if (locked) {
      log.warn(
        'no API key exists yet: every API request is refused (401) until the first is created, ' +
          (config.adminToken
            ? 'with ADMIN_TOKEN set: npm run keys -- --url <this gateway> create --name NAME (the admin API, POST /admin/v1/keys)'
            : 'with DATABASE_URL set: npm run keys -- create --name NAME (no ADMIN_TOKEN, so no admin API)'),
        { host: config.host },
      );
    }

    const queue = config.amqpUrl
      ? await connectRabbitMq({
          url: config.amqpUrl,
          caCert: config.amqpCaCert,
          connectTimeoutMs: config.amqpConnectTimeoutMs,
          prefix: config.amqpPrefix,
          deliveryLimit: config.deliveryLimit,
          log,
        })
      : createMemoryQueue({ deliveryLimit: config.deliveryLimit });
    cleanup.push(() => queue.close());
    if (queue.kind === 'memory') {
      // The in-process queue of the previous start is gone, and the messages in it with it.
      const requeued = await redispatchUnfinished(db);
      if (requeued > 0) log.info('unfinished generations of the previous start queued again', { count: requeued });
    }

    const metrics = createGatewayMetrics(() => queue.isConnected(), () => listApiKeyUsage(db), () => getOldestPendingAge(db));
    const metricsServer = config.metricsPort === undefined ? null : await serveMetricsOnLoopback(metrics.registry, config.metricsPort);
    if (metricsServer) cleanup.push(() => metricsServer.close());
    const changes = await startChangeFeed(db);
    cleanup.push(() => changes.close());
    const dispatcher = startDispatcher({
      db,
      queue,
      log,
      metrics,
      batchSize: config.dispatchBatch,
      sweepMs: config.dispatchSweepMs,
      lingerMs: config.dispatchLingerMs,
    });
    cleanup.push(() => dispatcher.stop());

    const deadLetters = await consumeDeadLetters({ db, queue, metrics, log, deliveryLimit: config.deliveryLimit });
    cleanup.push(() => deadLetters.cancel());

    const settings: GatewaySettings = {
      open,
      locked,
      runnerToken: config.runnerToken ?? randomBytes(32).toString('base64url'),
      leaseSeconds: config.leaseSeconds,
      maxBodyBytes: config.maxBodyBytes,
      bodyTimeoutMs: config.bodyTimeoutMs,
      publicUrl: config.publicUrl,
      allowedHost: config.publicUrl ? null : hostFilter(config),
      apiKeyCacheMs: config.apiKeyCacheMs,
      defaultMaxUnfinished: config.defaultMaxUnfinished,
      defaultMaxUnfinishedCost: config.defaultMaxUnfinishedCost,
      maxGenerationCost: config.maxGenerationCost,
      // Embedded, `npm run keys` reaches the running gateway through the admin API (the database
      // is this process's alone), with the token the lock file passes on.
      adminToken: config.adminToken ?? (db.lock ? randomBytes(32).toString('base64url') : null),
      rateLimits: config.rateLimits,
      trustedProxyHops: config.trustedProxyHops,
      sseKeepAliveMs: overrides.sseKeepAliveMs ?? 15_000,
      metricsOpen: config.loopback,
    };
    const images = overrides.images ?? openImageStore(config);
    const streamSlots = startStreamSlots({ db, max: config.maxStreamsPerKey, keepAliveMs: settings.sseKeepAliveMs, log });
    cleanup.push(() => streamSlots.stop());
    const limiter = startRateLimiter({ db, log });
    cleanup.push(async () => limiter.stop());
    const retention = startRetention({ db, images, log, retentionDays: config.retentionDays });
    cleanup.push(() => retention.stop());
    // Embedded on loopback, receivers on this machine (http, loopback) are allowed; elsewhere not.
    const webhookPolicy: TargetPolicy = {
      allowLoopback: overrides.webhooks?.allowLoopback ?? config.loopback,
      allowPrivate: parseAllowList(config.webhooks.allowPrivate),
      resolve: overrides.webhooks?.resolve ?? systemResolver,
    };
    const app = createApp({ db, inserter: groupCommit(db), queue, dispatcher, changes, streamSlots, limiter, metrics, log, images, settings, webhookPolicy });

    // Built now, so the first visitor does not wait for it; the API does not depend on it.
    webBundle().catch((err: unknown) => log.error('the web app could not be built; / answers 500', { err, stack: (err as Error).stack }));
    const server = await listen(app.fetch, config);
    cleanup.push(() => closeServer(server));
    const { port } = server.address() as AddressInfo;
    const host = config.host.includes(':') ? `[${config.host}]` : config.host;
    const url = `http://${host}:${port}`;
    // For `npm run keys` on this machine: a wildcard address is reached on loopback.
    const local = ['0.0.0.0', '::', '[::]'].includes(config.host) ? `http://127.0.0.1:${port}` : url;
    await db.lock?.announce({ url: local, admin_token: settings.adminToken });
    // Webhook bodies link to the public URL, or to this process's address without one.
    const webhookBase = config.publicUrl ?? local;
    const deliverer = await startDeliverer({
      db,
      log,
      policy: webhookPolicy,
      present: (g) => presentGeneration(g, webhookBase),
      ...config.webhooks,
      onAttempt: (outcome) => metrics.webhookDeliveries.inc({ outcome }),
    });
    cleanup.push(() => deliverer.stop());
    log.info('gateway listening', { url, database: db.kind, queue: queue.kind, open, locked });
    return { url, images, app, db, queue, dispatcher, settings, retention, metricsUrl: metricsServer?.url ?? null, close: closeAll };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

/**
 * ALLOWED_HOSTS, HOST, and this machine's loopback names (links to those lead nowhere but back
 * to the asking machine, and a rebinding DNS name is none of them).
 */
function hostFilter(config: Config): (hostname: string) => boolean {
  const allowed = new Set([...config.allowedHosts, config.host]);
  return (hostname) => isLoopback(hostname) || allowed.has(hostname);
}
