// Helpers shared by the benchmark scripts: formatting, percentiles and verdicts; child processes
// started until they say they are ready and stopped again; the scratch database, the queues and the
// API key a bench run makes, and the teardown that removes them even on Ctrl-C.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { runKeysCli } from '../../src/gateway/keys-cli.ts';
import { deleteTopology } from '../../test/helpers/queue.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const READY_TIMEOUT_MS = 30_000;

/** The services a bench runs on: the tests' PostgreSQL (its admin database) and RabbitMQ, unless told otherwise. */
export const ADMIN_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const AMQP_URL = process.env.BENCH_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

export const fmtInt = (n: number) => Math.round(n).toLocaleString('en-US');
export const fmtMs = (n: number) => (Number.isFinite(n) ? n.toFixed(n < 10 ? 2 : 1) : 'n/a');
export const pad = (s: string | number, n: number) => String(s).padStart(n);
/** A missed target is reported, never fatal: the figures depend on the machine. */
export const verdict = (ok: boolean) => (ok ? 'PASS' : 'MISS');

/** The nearest-rank percentile of values already sorted ascending (the load generator sorts its own typed array). */
export function percentileOfSorted(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** Requests of a load run that failed: non-2xx answers, socket errors and timeouts. */
export function failures(r: { statuses: Record<string, number>; errors: number; timeouts: number }): number {
  return r.errors + r.timeouts + Object.entries(r.statuses).reduce((s, [code, n]) => (code.startsWith('2') ? s : s + n), 0);
}

export function percentile(values: number[], p: number): number {
  return percentileOfSorted([...values].sort((a, b) => a - b), p);
}

function withDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

export interface ChildSpec {
  /** Prefixes the lines it forwards and names it in errors. */
  name: string;
  /** Arguments after `node --import tsx`, run from the repository root. */
  args: string[];
  env: Record<string, string>;
  /** A line of its output that says it is ready; group 1, if any, is what `ready` resolves to. */
  ready: RegExp;
  /** Which lines of its output (stdout and stderr) to show on this process's stderr. */
  forward: (line: string) => boolean;
}

/**
 * Starts a child; `ready` resolves once a line of its output matches `spec.ready`. The child is
 * returned at once so that a teardown can stop one that never got ready. Its stdin stays an open
 * pipe: the bench's own children treat its end as their parent gone. An exit after it was ready
 * that nobody asked for (no signal sent by `stopChild`) is reported, not thrown.
 */
export function spawnUntilReady(spec: ChildSpec): { child: ChildProcess; ready: Promise<string> } {
  const child = spawn(process.execPath, ['--import', 'tsx', ...spec.args], { cwd: ROOT, env: spec.env, stdio: ['pipe', 'pipe', 'pipe'] });
  const ready = new Promise<string>((resolve, reject) => {
    let seen = '';
    let done = false;
    const timer = setTimeout(() => reject(new Error(`${spec.name} did not start within ${READY_TIMEOUT_MS / 1000} s\n${seen}`)), READY_TIMEOUT_MS);
    const onData = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line) continue;
        if (!done) seen += `${line}\n`;
        if (spec.forward(line)) process.stderr.write(`[${spec.name}] ${line}\n`);
        const m = spec.ready.exec(line);
        if (m && !done) {
          done = true;
          clearTimeout(timer);
          resolve(m[1] ?? '');
        }
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      if (!done) {
        clearTimeout(timer);
        reject(new Error(`${spec.name} exited with ${code} before it was ready\n${seen}`));
      } else if (!child.killed) {
        process.stderr.write(`[${spec.name}] exited unexpectedly (${code})\n`);
      }
    });
  });
  return { child, ready };
}

/** Resolves when `child` exits, or after `ms` (then it is killed). */
export async function stopChild(child: ChildProcess | null, signal: NodeJS.Signals, ms: number): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), ms);
  await exited;
  clearTimeout(timer);
}

export interface ScratchDatabase {
  name: string;
  /** The scratch database's URL. */
  url: string;
  /** A connection to the server's admin database, for what is not the bench's (its version). */
  admin: postgres.Sql;
  /** (Re)creates it empty: a run that was killed may have left one behind. */
  create(): Promise<void>;
  /** Drops it and closes `admin`; reports a failure instead of throwing, so the rest of a teardown runs. */
  remove(): Promise<void>;
}

export function scratchDatabase(adminUrl: string, name: string): ScratchDatabase {
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  return {
    name,
    url: withDatabase(adminUrl, name),
    admin,
    async create() {
      await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.unsafe(`CREATE DATABASE ${name}`);
    },
    async remove() {
      await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch((err) => {
        console.error(`could not drop database ${name}: ${err}`);
      });
      await admin.end({ timeout: 5 });
    },
  };
}

/** Deletes the queues and exchanges of `prefix`; reports a failure instead of throwing. */
export async function removeQueues(amqpUrl: string, prefix: string): Promise<void> {
  await deleteTopology(amqpUrl, prefix).catch((err) => console.error(`could not delete queues ${prefix}.*: ${err}`));
}

/** Creates an API key in `databaseUrl` through the keys CLI, with limits no bench reaches; its secret. */
export async function createBenchKey(databaseUrl: string, name: string): Promise<string> {
  const lines: string[] = [];
  const exit = await runKeysCli(['create', '--name', name, '--max-unfinished', '1000000', '--max-unfinished-cost', '1000000000'], (l) => lines.push(l), {
    DATABASE_URL: databaseUrl,
  });
  const key = lines[0];
  if (exit !== 0 || !key?.startsWith('igk_')) throw new Error(`could not create an API key:\n${lines.join('\n')}`);
  return key;
}

/**
 * Makes `remove` run once however often it is called, and on SIGINT/SIGTERM (then exits 130).
 * `on`, not `once`: a terminal's SIGINT and tsx's relay of it both arrive, and the second must not
 * kill the teardown.
 */
export function teardownOnce(remove: () => Promise<void>): () => Promise<void> {
  let tornDown: Promise<void> | null = null;
  const teardown = () => (tornDown ??= remove());
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => void teardown().finally(() => process.exit(130)));
  }
  return teardown;
}

/** Runs a benchmark's main and exits with its code; a crash prints its stack and exits 1. */
export function runBench(main: () => Promise<number>): void {
  main().then(
    (code) => process.exit(code),
    (err) => {
      console.error(err instanceof Error ? err.stack : err);
      process.exit(1);
    },
  );
}
