// The one database interface the store's statements run on. Two implementations: a PostgreSQL
// server through the `postgres` driver, and PGlite (PostgreSQL compiled to WASM) in-process.
// Both run the same SQL text, so the embedded mode exercises the production statements.
import type { DataDirLock } from './data-dir-lock.ts';

export type Row = Record<string, unknown>;

export interface Queryable {
  /** Runs one parameterized statement and returns its rows. */
  query<T extends Row = Row>(text: string, params?: unknown[]): Promise<T[]>;
}

export interface Db extends Queryable {
  readonly kind: 'postgres' | 'pglite';
  /** PGlite: this process's hold on DATA_DIR, which the gateway announces its address in. */
  readonly lock?: DataDirLock;
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

/** A timestamp column as a Date, whichever driver read it (postgres gives Dates, PGlite may give strings). */
export function toDate(v: unknown): Date {
  return v instanceof Date ? v : new Date(String(v));
}
