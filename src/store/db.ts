// The one database interface the store's statements run on. Two implementations: a PostgreSQL
// server through the `postgres` driver, and PGlite (PostgreSQL compiled to WASM) in-process.
// Both run the same SQL text, so the embedded mode exercises the production statements.
export type Row = Record<string, unknown>;

export interface Queryable {
  /** Runs one parameterized statement and returns its rows. */
  query<T extends Row = Row>(text: string, params?: unknown[]): Promise<T[]>;
}

export interface Db extends Queryable {
  readonly kind: 'postgres' | 'pglite';
  /** Runs a script of several statements without parameters (migrations). */
  exec(text: string): Promise<void>;
  transaction<T>(fn: (tx: Queryable & { exec(text: string): Promise<void> }) => Promise<T>): Promise<T>;
  /**
   * Subscribes to NOTIFY on a channel; resolves once listening, with a function that stops it.
   * `onRelisten` is called each time listening resumes after a lost connection: notifications
   * sent while it was down are lost.
   */
  listen(channel: string, onPayload: (payload: string) => void, onRelisten?: () => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

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
