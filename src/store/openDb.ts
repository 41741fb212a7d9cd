// Opens the database the options name: a PostgreSQL server, or PGlite under the data folder. The
// drivers are imported only when chosen, so the embedded mode never loads `postgres` and vice versa.
// Either way its statements get spans in a trace (traced.ts).
import { traceStatements } from './traced.ts';
import type { Db } from './types.ts';

export interface OpenDbOptions {
  databaseUrl: string | undefined;
  dataDir: string;
  poolSize: number;
  /** Schema to create and use (tests isolate themselves this way); default `public`. */
  schema?: string;
  /** PostgreSQL server only: longest wait for a new connection (default: the driver's, 30 s). */
  connectTimeoutMs?: number;
  /** PostgreSQL server only: longest a statement may take, waiting for a pooled connection included (default: no limit). */
  queryTimeoutMs?: number;
  /** PostgreSQL server only: used instead of the URL's password. */
  password?: string | undefined;
  /** PostgreSQL server only: TLS required, verified against these CA certificates (and this server name, default the URL's host). */
  tls?: { ca: string; serverName: string | undefined } | undefined;
}

export async function openDb(options: OpenDbOptions): Promise<Db> {
  if (options.databaseUrl) {
    const { openPostgres } = await import('./postgres.ts');
    return traceStatements(await openPostgres({
      url: options.databaseUrl,
      poolSize: options.poolSize,
      schema: options.schema,
      connectTimeoutMs: options.connectTimeoutMs,
      queryTimeoutMs: options.queryTimeoutMs,
      password: options.password,
      tls: options.tls,
    }));
  }
  const { openPglite } = await import('./pglite.ts');
  return traceStatements(await openPglite(options.dataDir, options.schema));
}
