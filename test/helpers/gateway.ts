// Starts a real gateway for a test on real PostgreSQL (own schema) or PGlite (own folder), with
// RabbitMQ (own queue names) or the in-process queue, and cleans all of it up afterwards.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { parseConfig, type Config } from '../../src/gateway/config.ts';
import type { Logger } from '../../src/core/log.ts';
import { newApiKey } from '../../src/gateway/auth.ts';
import { startGateway, type Gateway, type GatewayOverrides } from '../../src/gateway/service.ts';
import { deleteTopology } from './queue.ts';
import { openDb } from '../../src/store/openDb.ts';
import { migrate } from '../../src/store/migrate.ts';
import { insertApiKey } from '../../src/store/sql/insertApiKey.ts';
import { AMQP_URL, DATABASE_URL, uniqueName } from './services.ts';

export const RUNNER_TOKEN = 'runner-token-for-tests-0123456789';

export interface TestGatewayOptions {
  store: 'postgres' | 'pglite';
  broker?: 'rabbitmq' | 'memory';
  /** Broker URL, e.g. through a TcpProxy; default the test broker. */
  amqpUrl?: string;
  /** API keys to create before start (then the gateway requires keys). */
  keys?: { name: string; maxUnfinished?: number }[];
  env?: Record<string, string>;
  sseKeepAliveMs?: number;
  /** Where the gateway logs (default: nowhere, LOG_LEVEL silent). */
  log?: Logger;
  /** Webhook target policy: another resolver, or the policy of a gateway off loopback. */
  webhooks?: GatewayOverrides['webhooks'];
  /** Another image store than the local folder (a GCS store on a fake server). */
  images?: GatewayOverrides['images'];
}

export interface TestGateway {
  gw: Gateway;
  url: string;
  /** The created keys, by name. */
  keys: Record<string, string>;
  prefix: string;
  /** The PostgreSQL schema the gateway works in (store 'postgres'), for a second connection or instance. */
  schema: string | undefined;
  config: Config;
  /** Calls the public API; `key` adds the bearer header. */
  call(method: string, route: string, options?: { body?: unknown; raw?: string; key?: string; headers?: Record<string, string> }): Promise<Response>;
  /** Calls the internal API with the runner token. */
  runner(route: string, body: unknown): Promise<Response>;
  /** Rows in the generations table (to check that bad input changed nothing). */
  countGenerations(): Promise<number>;
  stop(): Promise<void>;
}

export async function startTestGateway(o: TestGatewayOptions): Promise<TestGateway> {
  const schema = o.store === 'postgres' ? uniqueName('itemgen_test') : undefined;
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'itemgen-test-'));
  const prefix = uniqueName('itemgen-test');
  const env: Record<string, string | undefined> = {
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'silent',
    RUNNER_TOKEN,
    API_KEY_CACHE_MS: '0',
    DATABASE_URL: o.store === 'postgres' ? DATABASE_URL : undefined,
    DATABASE_POOL_SIZE: '8',
    DATA_DIR: dataDir,
    AMQP_URL: o.broker === 'rabbitmq' ? (o.amqpUrl ?? AMQP_URL) : undefined,
    AMQP_PREFIX: prefix,
    DISPATCH_SWEEP_MS: '1000',
    // Tests submit and read in bursts; the tests of the limits set their own.
    RATE_LIMIT_SUBMIT: 'off',
    RATE_LIMIT_REQUEST: 'off',
    RATE_LIMIT_ADDRESS: 'off',
    ...o.env,
  };
  const config = parseConfig(env);

  const keys: Record<string, string> = {};
  if (o.keys?.length) {
    const db = await openDb({ databaseUrl: config.databaseUrl, dataDir, poolSize: 1, ...(schema ? { schema } : {}) });
    await migrate(db);
    for (const k of o.keys) {
      const created = newApiKey();
      await insertApiKey(db, { name: k.name, keyHash: created.hash, prefix: created.prefix, maxUnfinished: k.maxUnfinished ?? 100 });
      keys[k.name] = created.key;
    }
    await db.close();
  }

  const gw = await startGateway(config, {
    ...(schema ? { schema } : {}),
    ...(o.sseKeepAliveMs ? { sseKeepAliveMs: o.sseKeepAliveMs } : {}),
    ...(o.log ? { log: o.log } : {}),
    ...(o.webhooks ? { webhooks: o.webhooks } : {}),
    ...(o.images ? { images: o.images } : {}),
  });

  const call: TestGateway['call'] = (method, route, options = {}) => {
    const headers: Record<string, string> = { ...options.headers };
    if (options.key) headers.authorization = `Bearer ${options.key}`;
    let body: string | undefined = options.raw;
    if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers['content-type'] ??= 'application/json';
    }
    return fetch(`${gw.url}${route}`, { method, headers, body });
  };

  return {
    gw,
    url: gw.url,
    keys,
    prefix,
    schema,
    config,
    call,
    runner: (route, body) =>
      call('POST', `/internal/v1${route}`, { body, headers: { authorization: `Bearer ${RUNNER_TOKEN}` } }),
    async countGenerations() {
      const rows = await gw.db.query('SELECT count(*) AS n FROM generations');
      return Number(rows[0]!.n);
    },
    async stop() {
      await gw.close();
      if (schema) {
        const sql = postgres(DATABASE_URL, { max: 1, onnotice: () => {} });
        await sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        await sql.end();
      }
      if (o.broker === 'rabbitmq') await deleteTopology(AMQP_URL, prefix);
      await fs.rm(dataDir, { recursive: true, force: true });
    },
  };
}

