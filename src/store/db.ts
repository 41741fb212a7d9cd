// Opens the database the configuration names: a PostgreSQL server, or PGlite under DATA_DIR.
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
}

export async function openDb(options: OpenDbOptions): Promise<Db> {
  if (options.databaseUrl) {
    const { openPostgres } = await import('./postgres.ts');
    return openPostgres({
      url: options.databaseUrl,
      poolSize: options.poolSize,
      schema: options.schema,
      connectTimeoutMs: options.connectTimeoutMs,
      queryTimeoutMs: options.queryTimeoutMs,
    });
  }
  const { openPglite } = await import('./pglite.ts');
  return openPglite(options.dataDir, options.schema);
}
