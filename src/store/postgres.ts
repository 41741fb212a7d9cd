// Db over a PostgreSQL server through the `postgres` driver: a pool, prepared statements, and
// LISTEN on a connection of its own. Every statement has a deadline that covers waiting for a
// pooled connection and the answer, so an unreachable server costs a request `queryTimeoutMs`,
// not the TCP timeouts; connection failures surface as DatabaseUnavailableError.
import postgres from 'postgres';
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
}

async function guarded<T>(work: () => Promise<T> | PromiseLike<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw classifyDatabaseError(err);
  }
}

export async function openPostgres(o: PostgresOptions): Promise<Db> {
  const timeouts = o.connectTimeoutMs === undefined ? {} : { connect_timeout: o.connectTimeoutMs / 1000 };
  const queryTimeoutMs = o.queryTimeoutMs;
  if (o.schema) {
    const admin = postgres(o.url, { max: 1, onnotice: () => {}, ...timeouts });
    try {
      await guarded(() => admin.unsafe(`CREATE SCHEMA IF NOT EXISTS "${o.schema}"`));
    } finally {
      await admin.end();
    }
  }
  const sql = postgres(o.url, {
    max: o.poolSize,
    onnotice: () => {},
    ...timeouts,
    // int8 (counts, sequence numbers, seeds) arrive as JS numbers; every value we keep is < 2^53.
    types: { int8: { to: 20, from: [20], serialize: (v: number) => String(v), parse: (v: string) => Number(v) } },
    // The server abandons a statement the client has stopped waiting for (migrations lift it).
    connection: {
      ...(queryTimeoutMs === undefined ? {} : { statement_timeout: queryTimeoutMs }),
      ...(o.schema ? { search_path: o.schema } : {}),
    },
  });

  const query = async <T extends Row>(text: string, params: unknown[] = []): Promise<T[]> => {
    const pending = sql.unsafe(text, params as never[], { prepare: true });
    if (queryTimeoutMs === undefined) return guarded(async () => (await pending) as unknown as T[]);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const message = `database unavailable: no answer within ${queryTimeoutMs} ms`;
        // The driver sets `state` once the statement is sent on a connection. One still waiting for
        // a connection leaves the queue, never to run; one sent is left to the server's
        // statement_timeout (the driver's cancel for it opens a connection, and its failure would
        // be an unhandled rejection in an outage).
        if ((pending as unknown as { state?: unknown }).state) return reject(new DatabaseUnavailableError(message, 'unknown'));
        pending.cancel();
        reject(new DatabaseUnavailableError(message, 'not_applied'));
      }, queryTimeoutMs);
    });
    try {
      return (await Promise.race([pending, deadline])) as unknown as T[];
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
