// Db over a PostgreSQL server through the `postgres` driver: a pool, prepared statements, and
// LISTEN on a connection of its own. Every statement has a deadline that covers waiting for a
// connection and the answer, so an unreachable server costs a request `queryTimeoutMs`, not the
// TCP timeouts; connection failures surface as DatabaseUnavailableError, which says whether the
// statement may have run.
import type { ConnectionOptions } from 'node:tls';
import postgres from 'postgres';
import { serverIdentityCheck } from '../core/tls.ts';
import type { Db, Row } from './types.ts';
import { classifyDatabaseError, DatabaseUnavailableError } from './errors.ts';

export interface PostgresOptions {
  url: string;
  poolSize: number;
  /** Schema to create and use (tests isolate themselves this way). */
  schema?: string | undefined;
  /** Longest wait for a new connection to be established (default: the driver's). */
  connectTimeoutMs?: number | undefined;
  /** Longest a statement may take, queueing for a connection included; also the server's statement_timeout (default: none). */
  queryTimeoutMs?: number | undefined;
  /** Used instead of the URL's password. */
  password?: string | undefined;
  /**
   * TLS required (whatever the URL's sslmode says), the server's chain verified against `ca`, and
   * its certificate's name against `serverName` (CN or DNS name), or the URL's host without one.
   */
  tls?: { ca: string; serverName?: string | undefined } | undefined;
}

/** The driver's connection options that the pool and the schema connection share. */
function connectionOptions(o: PostgresOptions) {
  const ssl: ConnectionOptions | undefined = o.tls && {
    ca: o.tls.ca,
    rejectUnauthorized: true,
    // The driver hands tls.connect no host (it passes its socket) and no servername for an IP
    // address, so Node would check the name against "localhost": the host is named here.
    checkServerIdentity: serverIdentityCheck(new URL(o.url).hostname.replace(/^\[|\]$/g, ''), o.tls.serverName, 'DATABASE_TLS_SERVER_NAME'),
  };
  return {
    onnotice: () => {},
    ...(o.connectTimeoutMs === undefined ? {} : { connect_timeout: o.connectTimeoutMs / 1000 }),
    ...(o.password === undefined ? {} : { password: o.password }),
    ...(ssl ? { ssl } : {}),
  };
}

async function guarded<T>(work: () => Promise<T> | PromiseLike<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw classifyDatabaseError(err);
  }
}

/**
 * A gate of `capacity` slots: `admit(ms)` resolves to a slot's release once one is free, or fails
 * after `ms` with DatabaseUnavailableError (not applied: the statement was never sent).
 */
function admission(capacity: number) {
  let free = capacity;
  const waiting: { grant: (release: () => void) => void; timer: NodeJS.Timeout }[] = [];
  const release = () => {
    const next = waiting.shift();
    if (next) {
      clearTimeout(next.timer);
      next.grant(once());
    } else free += 1;
  };
  const once = () => {
    let done = false;
    return () => {
      if (!done) (done = true), release();
    };
  };
  return (ms: number, message: string) =>
    new Promise<() => void>((resolve, reject) => {
      if (free > 0) {
        free -= 1;
        return resolve(once());
      }
      const entry = {
        grant: resolve,
        timer: setTimeout(() => {
          waiting.splice(waiting.indexOf(entry), 1);
          reject(new DatabaseUnavailableError(message, 'not_applied'));
        }, ms),
      };
      waiting.push(entry);
    });
}

export async function openPostgres(o: PostgresOptions): Promise<Db> {
  const shared = connectionOptions(o);
  const queryTimeoutMs = o.queryTimeoutMs;
  if (o.schema) {
    const admin = postgres(o.url, { max: 1, ...shared });
    try {
      await guarded(() => admin.unsafe(`CREATE SCHEMA IF NOT EXISTS "${o.schema}"`));
    } finally {
      await admin.end();
    }
  }
  const sql = postgres(o.url, {
    max: o.poolSize,
    ...shared,
    // Reconnect soon after the server is back: the driver's own backoff grows to 20 s after a few
    // failed attempts (seen: 9 s without a finished job after a 3 s cut); ours stops at 1 s.
    backoff: (retries: number) => (0.5 + Math.random() / 2) * Math.min(0.05 * 2 ** retries, 1),
    // int8 (counts, sequence numbers, seeds) arrive as JS numbers; every value we keep is < 2^53.
    types: { int8: { to: 20, from: [20], serialize: (v: number) => String(v), parse: (v: string) => Number(v) } },
    // The server abandons a statement the client has stopped waiting for (migrations lift it).
    connection: {
      ...(queryTimeoutMs === undefined ? {} : { statement_timeout: queryTimeoutMs }),
      ...(o.schema ? { search_path: o.schema } : {}),
    },
  });

  // Statements the driver holds at once: enough to keep its pipelining (several per connection
  // under load), few enough that an outage queues a bounded number in it. The rest wait here.
  const admit = admission(o.poolSize * 4);

  const query = async <T extends Row>(text: string, params: unknown[] = []): Promise<T[]> => {
    if (queryTimeoutMs === undefined) return guarded(() => sql.unsafe(text, params as never[], { prepare: true }) as unknown as Promise<T[]>);
    const deadline = performance.now() + queryTimeoutMs;
    const release = await admit(queryTimeoutMs, `database unavailable: no connection free within ${queryTimeoutMs} ms`);
    const pending = sql.unsafe(text, params as never[], { prepare: true });
    // The slot is the driver's until it settles the statement, which it always does (answer, error
    // or a broken connection): never cancelled here, since the driver's cancel of a statement that
    // is waiting for its connection to open leaves that connection out of its pool.
    pending.then(release, release);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new DatabaseUnavailableError(`database unavailable: no answer within ${queryTimeoutMs} ms`, 'unknown')),
        Math.max(0, deadline - performance.now()),
      );
    });
    try {
      return (await Promise.race([pending, late])) as unknown as T[];
    } catch (err) {
      throw classifyDatabaseError(err);
    } finally {
      clearTimeout(timer);
    }
  };
  return {
    kind: 'postgres',
    query,
    exec: async (text) => {
      await guarded(() => sql.unsafe(text));
    },
    transaction: (fn) =>
      guarded(
        async () =>
          (await sql.begin((tx) =>
            fn({
              query: async <T extends Row>(text: string, params: unknown[] = []) =>
                (await tx.unsafe(text, params as never[], { prepare: true })) as unknown as T[],
              exec: async (text: string) => {
                await tx.unsafe(text);
              },
            }),
          )) as never,
      ),
    async listen(channel, onPayload, onRelisten) {
      // The driver re-listens after a lost connection by itself; notifications sent in between
      // are gone, which onRelisten tells the subscriber.
      let first = true;
      const { unlisten } = await guarded(() =>
        sql.listen(channel, onPayload, () => {
          if (!first) onRelisten?.();
          first = false;
        }),
      );
      return unlisten;
    },
    async close() {
      await sql.end({ timeout: 5 });
    },
  };
}
