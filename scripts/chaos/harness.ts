// The chaos harness (`npm run chaos`, test/chaos.test.ts): the whole product as separate processes
// on real PostgreSQL and RabbitMQ — a gateway (src/gateway/main.ts) on a fixed port and a few
// runners (src/runner/main.ts) on the tiny model — with both services reached only through TCP
// proxies in this process, so their links can be cut. While a few hundred small jobs are
// submitted and processed, it SIGKILLs runners mid-job (and starts replacements), cuts the broker
// and the database links for a few seconds (and blackholes the database's: a partition), restarts
// the gateway (SIGTERM and SIGKILL) and cancels some jobs. Submitters retry with an Idempotency-Key until they get a 202; SSE watchers follow
// every accepted job, reconnecting with Last-Event-ID. At the end it checks, against the database
// directly (not through the proxy), the image folder and the broker:
//   - every accepted id exists exactly once (one row per Idempotency-Key, one id per key) and is
//     terminal, entered its terminal status exactly once and never left it (an audit trigger that
//     the harness adds to its own scratch database records every status change);
//   - failures are listed by code (too_many_attempts / delivery_limit_exceeded are tolerated but
//     reported), canceled jobs are ones the harness canceled, and a 200 to a cancel means canceled;
//   - completed jobs have images generated/<id>/<n>.png for n < num_images, each file a PNG of the
//     requested size, and no other file for any id (one stored object per image);
//   - the outbox is empty and no generation holds a lease;
//   - every SSE watcher saw exactly one terminal event, matching the final row (status and
//     version), and a reconnection after it with Last-Event-ID gets nothing more.
// Faults fire at completion milestones (fault k of F once k/(F+1) of the jobs are terminal), so
// they land while jobs are being submitted and processed whatever the machine's speed. Everything
// is bounded by a deadline; what is unfinished then is reported. Everything it made (processes, a
// scratch database itmgen_chaos_<pid>_<n>, the queues of its AMQP prefix, a temp folder) is
// removed at the end, also on failure.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import amqp from 'amqplib';
import postgres from 'postgres';
import { SCHEDULERS, type SchedulerName } from '../../src/core/request.ts';
import { runKeysCli } from '../../src/gateway/keys-cli.ts';
import { topologyFor } from '../../src/queue/rabbitmq.ts';
import { deleteTopology } from '../../test/helpers/queue.ts';
import { writeTinyModel } from '../../src/runner/pipeline/tiny-model.ts';
// Test-support code shared with the tests (the harness is test support too; its test is test/chaos.test.ts).
import { readSse } from '../../test/helpers/sse.ts';
import { startTcpProxy, type TcpProxy } from '../../test/helpers/tcp-proxy.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const GUARD = pathToFileURL(path.join(HERE, 'orphan-guard.ts')).href;

export type FaultKind = 'runnerKill' | 'brokerCut' | 'dbCut' | 'dbPartition' | 'gatewayRestart' | 'gatewayKill';

export interface ChaosOptions {
  /** Jobs to submit. */
  jobs: number;
  /** Runner processes (kept at this count: a killed one is replaced). */
  runners: number;
  /** The whole run, start-up included; past it the run stops, reports what is unfinished and fails. */
  deadlineMs: number;
  /** Faults to inject, by kind; they are interleaved and spread over the run by completion milestones. */
  faults: Record<FaultKind, number>;
  /** The faults in this order instead (then `faults` only counts them for the report). */
  faultOrder?: FaultKind[];
  /** Jobs canceled by the harness shortly after they are accepted. */
  cancels: number;
  /** How long a broker or database link stays cut (or, for dbPartition, blackholed). */
  cutMs: number;
  /**
   * How the n-th cut of a link cuts (cycling): 'refuse' like a server that is down (open
   * connections reset, new ones refused), 'drop' like a proxy whose backend is gone (open
   * connections closed, new ones accepted and closed at once).
   */
  cutModes: ('refuse' | 'drop')[];
  /** Concurrent submitters. */
  submitConcurrency: number;
  /**
   * Submissions per second at most: an open-loop pace, so jobs keep arriving while a fault stops
   * processing (and submits meet the fault). 0: as fast as the submitters go.
   */
  submitRate: number;
  /** Jobs accepted but not terminal at most: bounds the backlog on a slow machine. */
  maxInFlight: number;
  /** Share of accepted jobs followed by an SSE watcher (1: all). */
  watchFraction: number;
  /** After every job is terminal, how long watchers may still take to see their terminal event. */
  sseGraceMs: number;
  leaseSeconds: number;
  dispatchSweepMs: number;
  /** Failure codes that repeated kills can legitimately cause; reported, not counted as violations. */
  toleratedFailureCodes: string[];
  /** Admin connection to PostgreSQL (the scratch database is created next to its database). */
  databaseUrl: string;
  amqpUrl: string;
  /** Seed of the job parameters and of the choices of the run. */
  seed: number;
  /** Keep the temp folder (logs, images) instead of removing it. */
  keepDir: boolean;
  /** Progress lines (faults, milestones); default silent. */
  log: (line: string) => void;
  signal?: AbortSignal;
}

export const DEFAULT_OPTIONS: ChaosOptions = {
  jobs: 300,
  runners: 3,
  deadlineMs: 300_000,
  faults: { runnerKill: 3, brokerCut: 2, dbCut: 2, dbPartition: 1, gatewayRestart: 1, gatewayKill: 1 },
  cancels: 6,
  cutMs: 3000,
  cutModes: ['drop', 'refuse'],
  submitConcurrency: 8,
  submitRate: 4,
  maxInFlight: 100,
  watchFraction: 1,
  sseGraceMs: 5000,
  leaseSeconds: 5,
  dispatchSweepMs: 500,
  toleratedFailureCodes: ['too_many_attempts', 'delivery_limit_exceeded'],
  databaseUrl: process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
  amqpUrl: process.env.TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672',
  seed: 1,
  keepDir: false,
  log: () => {},
};

export interface Invariant {
  name: string;
  ok: boolean;
  /** Cases that broke it (the details then add log lines about the first ids). */
  violations: number;
  /** What was wrong (ids, rows, log lines); empty when ok. */
  details: string[];
}

export interface FaultRecord {
  kind: FaultKind | 'cancel';
  /** Since the start of the run. */
  atMs: number;
  tookMs: number;
  detail: string;
  /** From the end of the fault to the next job finishing (database time), when one did. */
  nextFinishMs?: number;
  /** Wall-clock end, to compare with the database's timestamps. */
  endedAt?: number;
}

export interface ChaosReport {
  ok: boolean;
  timedOut: boolean;
  /** Why the run stopped early (deadline, abort, a start-up error), if it did. */
  stoppedBy: string | null;
  wallMs: number;
  jobs: { planned: number; accepted: number; rejected: number; completed: number; failed: number; canceled: number; unfinished: number };
  failuresByCode: Record<string, string[]>;
  submit: {
    requests: number;
    retries: number;
    retriesByReason: Record<string, number>;
    replayed: number;
    p95Ms: number;
    maxMs: number;
    /** When submits timed out (a stalled request), since the start of the run. */
    timeoutsAtMs: number[];
  };
  cancels: { requested: number; applied: number; alreadyFinished: number; errors: number };
  faults: { planned: Record<FaultKind, number>; injected: Record<FaultKind | 'cancel', number>; timeline: FaultRecord[] };
  latencyMs: { p50: number; p95: number; max: number; maxId: string | null };
  jobsPerSecond: number;
  /** The longest time without any job finishing, and when it began (since the start of the run). */
  longestPauseMs: { ms: number; atMs: number };
  attempts: Record<string, number>;
  sse: { watchers: number; reconnects: number; maxReconnects: number; connectErrors: Record<string, number> };
  /**
   * Runner log: redelivered messages of a job whose lease another runner still held — held until
   * that lease ran out (older runners: the wait), or dropped at once (newer runners: no wait).
   */
  heldMessages: { count: number; totalWaitMs: number; maxWaitMs: number };
  /** Gateway and runner warnings/errors by message, over all processes. */
  logWarnings: Record<string, number>;
  /** Not violations, worth knowing (stored objects of jobs that did not complete, temp files, queue leftovers). */
  notes: string[];
  invariants: Invariant[];
  dir: string | null;
}

// ─── small tools ───────────────────────────────────────────────────────────────────────────────

function mulberry32(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

function withDatabase(url: string, db: string, port?: number): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  if (port !== undefined) {
    u.hostname = '127.0.0.1';
    u.port = String(port);
  }
  return u.toString();
}

function withPort(url: string, port: number): string {
  const u = new URL(url);
  u.hostname = '127.0.0.1';
  u.port = String(port);
  return u.toString();
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Waits for `cond`, re-checked whenever `wakeAll()` is called; false when `signal` aborts first. */
function conditions() {
  const waiters = new Set<() => void>();
  return {
    wakeAll() {
      for (const w of [...waiters]) w();
    },
    async until(cond: () => boolean, signal: AbortSignal): Promise<boolean> {
      while (!cond()) {
        if (signal.aborted) return false;
        await new Promise<void>((resolve) => {
          const done = () => {
            waiters.delete(done);
            signal.removeEventListener('abort', done);
            resolve();
          };
          waiters.add(done);
          signal.addEventListener('abort', done, { once: true });
        });
      }
      return true;
    },
  };
}

const quietSleep = (ms: number, signal?: AbortSignal) => sleep(ms, undefined, signal ? { signal } : {}).catch(() => {});

// ─── child processes ───────────────────────────────────────────────────────────────────────────

interface Service {
  name: string;
  runnerId: string | null;
  proc: ChildProcess;
  logPath: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Calls `fn` with each log line from now on; returns the unsubscribe function. */
  onLine(fn: (line: string) => void): () => void;
}

function spawnService(name: string, script: string, env: Record<string, string>, logPath: string, runnerId: string | null): Service {
  const proc = spawn(process.execPath, ['--import', 'tsx', '--import', GUARD, script], {
    cwd: ROOT,
    env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const file: WriteStream = createWriteStream(logPath, { flags: 'a' });
  const listeners = new Set<(line: string) => void>();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('exit', (code, signal) => resolve({ code, signal })),
  );
  for (const stream of [proc.stdout!, proc.stderr!]) {
    let carry = '';
    stream.on('data', (chunk: Buffer) => {
      file.write(chunk);
      const text = carry + chunk.toString('utf8');
      const lines = text.split('\n');
      carry = lines.pop()!;
      for (const line of lines) if (line) for (const fn of [...listeners]) fn(line);
    });
  }
  proc.stdin!.on('error', () => {});
  exited.then(() => file.end());
  return {
    name,
    runnerId,
    proc,
    logPath,
    exited,
    onLine(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
  };
}

const alive = (s: Service) => s.proc.exitCode === null && s.proc.signalCode === null;

/** Resolves with the first line matching `re` (null on timeout, abort or exit). */
function nextLine(s: Service, re: RegExp, timeoutMs: number, signal?: AbortSignal): Promise<string | null> {
  return new Promise((resolve) => {
    let off = () => {};
    const finish = (v: string | null) => {
      off();
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      resolve(v);
    };
    const onAbort = () => finish(null);
    const timer = setTimeout(() => finish(null), timeoutMs);
    off = s.onLine((line) => re.test(line) && finish(line));
    if (signal?.aborted) return finish(null);
    signal?.addEventListener('abort', onAbort, { once: true });
    s.exited.then(() => finish(null));
  });
}

async function stopService(s: Service, signal: NodeJS.Signals, killAfterMs: number): Promise<void> {
  if (!alive(s)) return;
  s.proc.kill(signal);
  const timer = setTimeout(() => s.proc.kill('SIGKILL'), killAfterMs);
  await s.exited;
  clearTimeout(timer);
}

// ─── the run ───────────────────────────────────────────────────────────────────────────────────

interface Job {
  index: number;
  key: string;
  body: { prompt: string; num_inference_steps: number; guidance_scale: number; seed: number; width: number; height: number; scheduler: SchedulerName; num_images: number };
  id: string | null;
  ids: Set<string>;
  rejected: string | null;
  cancel: 'none' | 'planned' | 'applied' | 'already_finished' | 'error';
  watcher: Watcher | null;
}

interface Watcher {
  id: string;
  connections: number;
  reconnects: number;
  lastEventId: string | null;
  terminal: { status: string; version: number }[];
  /** Events received on a reconnection made after the terminal event (should be none). */
  afterTerminal: number | null;
  lastStatus: string | null;
  /** When its last connection was made, since the start of the run. */
  lastConnectAtMs: number;
  done: Promise<void>;
}

const TERMINAL = new Set(['completed', 'failed', 'canceled']);
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export async function runChaos(partial: Partial<ChaosOptions> = {}): Promise<ChaosReport> {
  const o: ChaosOptions = { ...DEFAULT_OPTIONS, ...partial, faults: { ...DEFAULT_OPTIONS.faults, ...partial.faults } };
  if (o.faultOrder) {
    o.faults = { runnerKill: 0, brokerCut: 0, dbCut: 0, dbPartition: 0, gatewayRestart: 0, gatewayKill: 0 };
    for (const k of o.faultOrder) o.faults[k]++;
  }
  const t0 = performance.now();
  const at = () => Math.round(performance.now() - t0);
  const say = (line: string) => o.log(`[chaos ${(at() / 1000).toFixed(1).padStart(6)} s] ${line}`);
  const rand = mulberry32(o.seed);

  const tag = `${process.pid}_${Date.now().toString(36)}_${randomBytes(2).toString('hex')}`;
  const dbName = `itemgen_chaos_${tag}`;
  const prefix = `itemgen-chaos-${tag}`;
  const runnerToken = `chaos-runner-token-${randomBytes(12).toString('hex')}`;
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'itemgen-chaos-'));
  const logsDir = path.join(dir, 'logs');
  const dataDir = path.join(dir, 'data');
  const modelDir = path.join(dir, 'model');
  await fs.mkdir(logsDir, { recursive: true });

  // One abort for everything that runs until the end (submitters, faults, watchers, the poller).
  const stop = new AbortController();
  // Every request of the run listens to it (AbortSignal.any), hundreds at once.
  setMaxListeners(0, stop.signal);
  const run = { stoppedBy: null as string | null };
  const halt = (why: string) => {
    if (!stop.signal.aborted) {
      run.stoppedBy = why;
      stop.abort(new Error(why));
    }
  };
  const deadline = setTimeout(() => halt(`deadline of ${o.deadlineMs / 1000} s reached`), o.deadlineMs);
  const onOuterAbort = () => halt('aborted');
  o.signal?.addEventListener('abort', onOuterAbort, { once: true });
  // Watchers get their own abort: they may run past the others' stop, for the grace period.
  const watchStop = new AbortController();
  setMaxListeners(0, watchStop.signal);
  stop.signal.addEventListener('abort', () => setTimeout(() => watchStop.abort(), o.sseGraceMs).unref(), { once: true });

  const services = new Set<Service>();
  const killAllNow = () => {
    for (const s of services) if (alive(s)) s.proc.kill('SIGKILL');
  };
  process.on('exit', killAllNow);

  const admin = postgres(o.databaseUrl, { max: 1, onnotice: () => {} });
  let direct: postgres.Sql | null = null;
  const proxies: TcpProxy[] = [];
  let dbCreated = false;

  const jobs: Job[] = [];
  const watchers: Watcher[] = [];
  const timeline: FaultRecord[] = [];
  const injected: Record<FaultKind | 'cancel', number> = { runnerKill: 0, brokerCut: 0, dbCut: 0, dbPartition: 0, gatewayRestart: 0, gatewayKill: 0, cancel: 0 };
  const submit = { requests: 0, retries: 0, retriesByReason: {} as Record<string, number>, replayed: 0, timeoutsAtMs: [] as number[] };
  const cancels = { requested: 0, applied: 0, alreadyFinished: 0, errors: 0 };
  const sseConnectErrors: Record<string, number> = {};
  const notes: string[] = [];
  const listenTrail: string[] = [];
  const invariants: Invariant[] = [];
  const check = (name: string, details: string[]) => invariants.push({ name, ok: details.length === 0, violations: details.length, details });
  const cond = conditions();
  let dbCounts = { total: 0, terminal: 0, completed: 0 };
  let acceptedCount = 0;
  let submitsDone = false;

  try {
    // ── services and their proxies ──
    const pgTarget = new URL(o.databaseUrl);
    const amqpTarget = new URL(o.amqpUrl);
    const dbProxy = await startTcpProxy(pgTarget.hostname, Number(pgTarget.port || 5432));
    const amqpProxy = await startTcpProxy(amqpTarget.hostname, Number(amqpTarget.port || 5672));
    proxies.push(dbProxy, amqpProxy);
    const directUrl = withDatabase(o.databaseUrl, dbName);
    const proxiedDbUrl = withDatabase(o.databaseUrl, dbName, dbProxy.port);
    const proxiedAmqpUrl = withPort(o.amqpUrl, amqpProxy.port);

    await admin.unsafe(`CREATE DATABASE "${dbName}"`);
    dbCreated = true;
    // The keys CLI migrates the scratch database and creates the key, before the gateway starts.
    const keyLines: string[] = [];
    const keyExit = await runKeysCli(['create', '--name', 'chaos', '--max-unfinished', '1000000', '--max-unfinished-cost', '1000000'], (l) => keyLines.push(l), {
      DATABASE_URL: directUrl,
    });
    const apiKey = keyLines[0];
    if (keyExit !== 0 || !apiKey?.startsWith('igk_')) throw new Error(`could not create an API key:\n${keyLines.join('\n')}`);
    const auth = { authorization: `Bearer ${apiKey}` };
    direct = postgres(directUrl, { max: 4, onnotice: () => {} });
    // Instrumentation of the scratch database only: every status change, to check "terminal exactly once".
    await direct.unsafe(`
      CREATE TABLE chaos_transitions (
        id uuid NOT NULL, old_status text, new_status text NOT NULL, version integer NOT NULL,
        at timestamptz NOT NULL DEFAULT clock_timestamp());
      CREATE FUNCTION chaos_audit() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO chaos_transitions (id, old_status, new_status, version)
        VALUES (NEW.id, CASE WHEN TG_OP = 'INSERT' THEN NULL ELSE OLD.status END, NEW.status, NEW.version);
        RETURN NULL;
      END $$;
      CREATE TRIGGER chaos_audit_insert AFTER INSERT ON generations FOR EACH ROW EXECUTE FUNCTION chaos_audit();
      CREATE TRIGGER chaos_audit_status AFTER UPDATE OF status ON generations
        FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION chaos_audit();`);

    await writeTinyModel(modelDir, { seed: 0 });
    const port = await freePort();
    const gatewayUrl = `http://127.0.0.1:${port}`;
    const baseEnv = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? os.tmpdir(),
      AMQP_URL: proxiedAmqpUrl,
      AMQP_PREFIX: prefix,
      RUNNER_TOKEN: runnerToken,
      DATA_DIR: dataDir,
    };
    let gatewayNo = 0;
    const startGatewayOnce = async (): Promise<Service | null> => {
      const name = `gateway-${++gatewayNo}`;
      const s = spawnService(
        name,
        'src/gateway/main.ts',
        {
          ...baseEnv,
          HOST: '127.0.0.1',
          PORT: String(port),
          DATABASE_URL: proxiedDbUrl,
          DATABASE_POOL_SIZE: '10',
          LEASE_SECONDS: String(o.leaseSeconds),
          DISPATCH_SWEEP_MS: String(o.dispatchSweepMs),
          // The run is one key with a watcher per job and a steady stream of submits: the per-key
          // limits are not what it tests.
          MAX_STREAMS_PER_KEY: '100000',
          RATE_LIMIT_SUBMIT: 'off',
          RATE_LIMIT_REQUEST: 'off',
          RATE_LIMIT_ADDRESS: 'off',
          LOG_LEVEL: 'info',
        },
        path.join(logsDir, `${name}.log`),
        null,
      );
      services.add(s);
      const ready = await nextLine(s, /"message":"gateway listening"/, 60_000, stop.signal);
      if (ready) return s;
      const exit = alive(s) ? 'no "gateway listening" within 60 s' : `exited ${JSON.stringify(await s.exited)}`;
      say(`${name} did not start (${exit}); see ${s.logPath}`);
      await stopService(s, 'SIGKILL', 1000);
      return null;
    };
    /** Starts a gateway, trying again while it fails (e.g. while a link is cut), until the run stops. */
    const startGatewayProcess = async (): Promise<Service> => {
      for (;;) {
        const s = await startGatewayOnce();
        if (s) return s;
        if (stop.signal.aborted) throw new Error('the gateway could not be started before the run stopped');
        await quietSleep(500, stop.signal);
      }
    };
    let runnerNo = 0;
    const startRunnerProcess = async (): Promise<Service> => {
      const name = `runner-${++runnerNo}`;
      const runnerId = `chaos-${name}`;
      const s = spawnService(
        name,
        'src/runner/main.ts',
        {
          ...baseEnv,
          GATEWAY_URL: gatewayUrl,
          MODEL_DIR: modelDir,
          EXECUTION_PROVIDER: 'cpu',
          INTRA_OP_THREADS: '1',
          INTER_OP_THREADS: '1',
          RUNNER_ID: runnerId,
          RUNNER_HEALTH_HOST: '127.0.0.1',
          RUNNER_HEALTH_PORT: '0',
          RUNNER_GRACE_SECONDS: '5',
          // debug: "generation claimed", which lets a kill land mid-job.
          LOG_LEVEL: 'debug',
        },
        path.join(logsDir, `${name}.log`),
        runnerId,
      );
      services.add(s);
      const ready = await nextLine(s, /"message":"runner consuming"/, 60_000, stop.signal);
      if (!ready) {
        const exit = alive(s) ? 'no "runner consuming" within 60 s' : `exited ${JSON.stringify(await s.exited)}`;
        await stopService(s, 'SIGKILL', 1000);
        throw new Error(`${name} did not start (${exit}); see ${s.logPath}`);
      }
      return s;
    };

    let gateway = await startGatewayProcess();
    const runners = await Promise.all(Array.from({ length: o.runners }, () => startRunnerProcess()));
    say(`gateway ${gatewayUrl}, ${runners.length} runners, database ${dbName} via :${dbProxy.port}, broker prefix ${prefix} via :${amqpProxy.port}`);

    // ── the database, polled directly: nothing else says when every job is done ──
    // … and the gateway's LISTEN connection (its change feed, which every SSE stream waits on).
    let listeners = -1;
    const poller = (async () => {
      while (!watchStop.signal.aborted) {
        try {
          const [l] = await admin`
            SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = ${dbName} AND query ILIKE 'listen %'`;
          if (l!.n !== listeners) {
            listenTrail.push(`${(at() / 1000).toFixed(1)} s: ${l!.n}`);
            listeners = l!.n as number;
          }
          const rows = await direct!`SELECT status, count(*)::int AS n FROM generations GROUP BY status`;
          const by = Object.fromEntries(rows.map((r) => [r.status as string, r.n as number]));
          const total = rows.reduce((s, r) => s + (r.n as number), 0);
          dbCounts = { total, terminal: (by.completed ?? 0) + (by.failed ?? 0) + (by.canceled ?? 0), completed: by.completed ?? 0 };
          cond.wakeAll();
        } catch (err) {
          say(`poll failed: ${(err as Error).message}`);
        }
        await quietSleep(250, watchStop.signal);
      }
    })();

    // ── jobs ──
    for (let i = 0; i < o.jobs; i++) {
      const scheduler = SCHEDULERS[Math.floor(rand() * SCHEDULERS.length)]!;
      // PNDM runs its multistep formula; give it room. The others take any step count ≥ 1.
      const minSteps = scheduler === 'pndm' ? 4 : 2;
      jobs.push({
        index: i,
        key: `chaos-${tag}-${i}`,
        body: {
          prompt: `chaos item ${i}: a ${['rusty', 'glowing', 'cursed', 'tiny'][i % 4]} ${['sword', 'shield', 'potion', 'ring'][(i >> 2) % 4]}`,
          num_inference_steps: minSteps + Math.floor(rand() * (7 - minSteps)),
          guidance_scale: rand() < 0.2 ? 0 : 7.5,
          seed: Math.floor(rand() * 2 ** 32),
          width: 256,
          height: 256,
          scheduler,
          num_images: rand() < 0.3 ? 2 : 1,
        },
        id: null,
        ids: new Set(),
        rejected: null,
        cancel: 'none',
        watcher: null,
      });
    }
    const toCancel = new Set<number>();
    while (toCancel.size < Math.min(o.cancels, o.jobs)) toCancel.add(Math.floor(rand() * o.jobs));
    for (const i of toCancel) jobs[i]!.cancel = 'planned';
    const watchEvery = o.watchFraction > 0 ? Math.max(1, Math.round(1 / o.watchFraction)) : Infinity;

    const retry = (reason: string) => {
      submit.retries++;
      submit.retriesByReason[reason] = (submit.retriesByReason[reason] ?? 0) + 1;
    };
    const backoff = (n: number) => Math.min(1000, 50 * 2 ** n) * (0.5 + rand() / 2);

    const submitMs: number[] = [];
    const submitOne = async (job: Job) => {
      const first = performance.now();
      for (let n = 0; !stop.signal.aborted; n++) {
        submit.requests++;
        let res: Response;
        try {
          res = await fetch(`${gatewayUrl}/v1/generations`, {
            method: 'POST',
            headers: { ...auth, 'content-type': 'application/json', 'idempotency-key': job.key },
            body: JSON.stringify(job.body),
            signal: AbortSignal.any([stop.signal, AbortSignal.timeout(10_000)]),
          });
        } catch (err) {
          if (stop.signal.aborted) return;
          const timedOut = (err as Error).name === 'TimeoutError';
          if (timedOut) submit.timeoutsAtMs.push(at());
          retry(timedOut ? 'timeout (10 s)' : 'connection error');
          await quietSleep(backoff(n), stop.signal);
          continue;
        }
        const text = await res.text().catch(() => '');
        if (res.status === 202) {
          const id = (JSON.parse(text) as { id: string }).id;
          if (res.headers.get('idempotent-replayed') === 'true') submit.replayed++;
          submitMs.push(performance.now() - first);
          job.ids.add(id);
          if (!job.id) {
            job.id = id;
            acceptedCount++;
            cond.wakeAll();
            if (job.index % watchEvery === 0) watchers.push((job.watcher = watch(id)));
            if (job.cancel === 'planned') void cancelSoon(job);
          }
          return;
        }
        if (res.status >= 500 || res.status === 429) {
          retry(`http ${res.status}${/"code":"([a-z_]+)"/.exec(text)?.[1] ? ` ${/"code":"([a-z_]+)"/.exec(text)![1]}` : ''}`);
          const after = Number(res.headers.get('retry-after'));
          await quietSleep(Number.isFinite(after) && after > 0 ? Math.min(after * 1000, 5000) : backoff(n), stop.signal);
          continue;
        }
        job.rejected = `${res.status} ${text.slice(0, 300)}`;
        return;
      }
    };

    const cancelSoon = async (job: Job) => {
      // A moment after acceptance, so some are pending and some processing when canceled.
      await quietSleep(rand() * 400, stop.signal);
      const started = at();
      cancels.requested++;
      injected.cancel++;
      for (let n = 0; !stop.signal.aborted; n++) {
        try {
          const res = await fetch(`${gatewayUrl}/v1/generations/${job.id}/cancel`, {
            method: 'POST',
            headers: auth,
            signal: AbortSignal.any([stop.signal, AbortSignal.timeout(10_000)]),
          });
          const text = await res.text();
          // A retry that finds the job canceled: an earlier try took effect, though its answer was a
          // 503 that said it may have (or never arrived). Only the harness cancels.
          const canceledBefore = res.status === 409 && (JSON.parse(text) as { generation_status?: string }).generation_status === 'canceled';
          if (res.status === 200 || canceledBefore) {
            job.cancel = 'applied';
            cancels.applied++;
          } else if (res.status === 409) {
            job.cancel = 'already_finished';
            cancels.alreadyFinished++;
          } else if (res.status >= 500) {
            await quietSleep(backoff(n), stop.signal);
            continue;
          } else {
            job.cancel = 'error';
            cancels.errors++;
            notes.push(`cancel of ${job.id} answered ${res.status}: ${text.slice(0, 200)}`);
          }
          timeline.push({ kind: 'cancel', atMs: started, tookMs: at() - started, detail: `${job.id}: ${job.cancel}` });
          return;
        } catch {
          if (stop.signal.aborted) return;
          await quietSleep(backoff(n), stop.signal);
        }
      }
    };

    const watch = (id: string): Watcher => {
      const w: Watcher = { id, connections: 0, reconnects: 0, lastEventId: null, terminal: [], afterTerminal: null, lastStatus: null, lastConnectAtMs: 0, done: Promise.resolve() };
      const connect = async (onEvent: (status: string, version: number) => void): Promise<boolean> => {
        w.connections++;
        w.lastConnectAtMs = at();
        const headers: Record<string, string> = { ...auth, accept: 'text/event-stream' };
        if (w.lastEventId) headers['last-event-id'] = w.lastEventId;
        try {
          const res = await fetch(`${gatewayUrl}/v1/generations/${id}/events`, { headers, signal: watchStop.signal });
          if (res.status !== 200) {
            const why = `http ${res.status}`;
            sseConnectErrors[why] = (sseConnectErrors[why] ?? 0) + 1;
            await res.body?.cancel().catch(() => {});
            return false;
          }
          for await (const e of readSse(res)) {
            if (e.id) w.lastEventId = e.id;
            const g = JSON.parse(e.data) as { status: string };
            w.lastStatus = g.status;
            onEvent(g.status, Number(e.id));
          }
          return true;
        } catch (err) {
          if (!watchStop.signal.aborted) {
            const why = (err as Error).message === 'fetch failed' ? 'connection error' : 'stream broken';
            sseConnectErrors[why] = (sseConnectErrors[why] ?? 0) + 1;
          }
          return false;
        }
      };
      w.done = (async () => {
        for (let n = 0; !watchStop.signal.aborted && w.terminal.length === 0; n++) {
          if (w.connections > 0) {
            w.reconnects++;
            await quietSleep(backoff(Math.min(n, 5)), watchStop.signal);
          }
          await connect((status, version) => {
            if (TERMINAL.has(status)) w.terminal.push({ status, version });
          });
        }
        // Resuming after the terminal event must give nothing more (and end at once).
        for (let n = 0; w.terminal.length > 0 && w.afterTerminal === null && !watchStop.signal.aborted && n < 20; n++) {
          let extra = 0;
          if (await connect(() => extra++)) w.afterTerminal = extra;
          else await quietSleep(backoff(Math.min(n, 5)), watchStop.signal);
        }
      })();
      return w;
    };

    let nextJob = 0;
    const submitStart = performance.now();
    const submitters = Promise.all(
      Array.from({ length: o.submitConcurrency }, async () => {
        while (!stop.signal.aborted && nextJob < jobs.length) {
          const job = jobs[nextJob++]!;
          // The pace of the load (a schedule, not a synchronization): job i is due at i / rate.
          if (o.submitRate > 0) await quietSleep(submitStart + (job.index * 1000) / o.submitRate - performance.now(), stop.signal);
          if (!(await cond.until(() => acceptedCount - dbCounts.terminal < o.maxInFlight, stop.signal))) return;
          await submitOne(job);
        }
      }),
    ).then(() => {
      submitsDone = true;
      cond.wakeAll();
      say(`submitting done: ${acceptedCount} accepted, ${submit.retries} retries`);
    });

    // ── faults ──
    const order: FaultKind[] = o.faultOrder ? [...o.faultOrder] : [];
    const left = o.faultOrder ? { runnerKill: 0, brokerCut: 0, dbCut: 0, dbPartition: 0, gatewayRestart: 0, gatewayKill: 0 } : { ...o.faults };
    // A database cut closes each round: a gateway restart after it would reconnect every event
    // stream and hide one that missed a change while the link was down.
    const kinds: FaultKind[] = ['runnerKill', 'gatewayRestart', 'brokerCut', 'dbPartition', 'runnerKill', 'gatewayKill', 'dbCut'];
    while (Object.values(left).some((n) => n > 0)) {
      for (const k of kinds) {
        if (left[k] > 0) {
          order.push(k);
          left[k]--;
        }
      }
    }

    const killRunner = async (): Promise<string | null> => {
      const slot = injected.runnerKill % runners.length;
      const victim = runners[slot]!;
      // Kill right after it claims a job, so the job is mid-flight: its lease must run out.
      const line = await nextLine(victim, /"message":"generation claimed"/, 10_000, stop.signal);
      if (stop.signal.aborted) return null;
      const claimed = line ? ((JSON.parse(line) as { id?: string }).id ?? null) : null;
      victim.proc.kill('SIGKILL');
      await victim.exited;
      let detail = `${victim.name} SIGKILLed`;
      if (claimed) {
        const [row] = await direct!`SELECT status, runner_id, attempts FROM generations WHERE id = ${claimed}`;
        const mid = row?.status === 'processing' && row.runner_id === victim.runnerId;
        detail += mid ? ` mid-job (${claimed}, attempt ${row!.attempts})` : ` after claiming ${claimed} (already ${row?.status})`;
      } else {
        detail += ' (no claim seen within 10 s)';
      }
      runners[slot] = await startRunnerProcess();
      return `${detail}; replaced by ${runners[slot]!.name}`;
    };

    const restartGateway = async (signal: 'SIGTERM' | 'SIGKILL'): Promise<string> => {
      const old = gateway;
      await stopService(old, signal, 20_000);
      const exit = await old.exited;
      gateway = await startGatewayProcess();
      return `${old.name} ${signal} (exit ${exit.signal ?? exit.code}); ${gateway.name} listening`;
    };

    const cut = async (proxy: TcpProxy, what: string, nth: number): Promise<string> => {
      const mode = o.cutModes[nth % o.cutModes.length] ?? 'refuse';
      proxy.cut({ refuse: mode === 'refuse' });
      try {
        await quietSleep(o.cutMs, stop.signal);
      } finally {
        await proxy.restore();
      }
      return `${what} link cut for ${o.cutMs} ms (${mode === 'refuse' ? 'connections reset and refused' : 'connections closed, new ones accepted and closed'})`;
    };

    const allTerminal = () => submitsDone && dbCounts.total >= acceptedCount && dbCounts.terminal === dbCounts.total;
    // A partition: nothing answers and nothing is refused; what was sent arrives after restore.
    const partition = async (proxy: TcpProxy, what: string): Promise<string> => {
      proxy.blackhole();
      try {
        await quietSleep(o.cutMs, stop.signal);
      } finally {
        await proxy.restore();
      }
      return `${what} link blackholed for ${o.cutMs} ms (nothing answered, nothing refused)`;
    };

    const faults = (async () => {
      for (let k = 0; k < order.length; k++) {
        const milestone = Math.floor(((k + 1) * o.jobs) / (order.length + 1));
        if (!(await cond.until(() => dbCounts.terminal >= milestone || allTerminal(), stop.signal))) return;
        // Fewer jobs reached the end than planned (rejected ones): no job left to disturb.
        if (dbCounts.terminal < milestone || stop.signal.aborted) return;
        const kind = order[k]!;
        const started = at();
        let detail: string | null;
        if (kind === 'runnerKill') detail = await killRunner();
        else if (kind === 'brokerCut') detail = await cut(amqpProxy, 'broker', injected.brokerCut);
        else if (kind === 'dbCut') detail = await cut(dbProxy, 'database', injected.dbCut);
        else if (kind === 'dbPartition') detail = await partition(dbProxy, 'database');
        else detail = await restartGateway(kind === 'gatewayKill' ? 'SIGKILL' : 'SIGTERM');
        if (detail === null) return;
        injected[kind]++;
        timeline.push({ kind, atMs: started, tookMs: at() - started, detail, endedAt: Date.now() });
        say(`fault ${k + 1}/${order.length} at ${milestone} terminal: ${kind}: ${detail} (${at() - started} ms)`);
        // Let the system breathe before the next one: the faults are meant one at a time.
        await quietSleep(1000, stop.signal);
      }
    })().catch((err) => {
      say(`fault injection failed: ${(err as Error).stack}`);
      halt(`fault injection failed: ${(err as Error).message}`);
    });

    // ── wait for the end: every job submitted, every row terminal, every fault done ──
    let lastReport = 0;
    const progress = setInterval(() => {
      if (at() - lastReport < 10_000) return;
      lastReport = at();
      say(`${acceptedCount}/${o.jobs} accepted, ${dbCounts.terminal}/${dbCounts.total} terminal in the database`);
    }, 1000);
    await submitters;
    await cond.until(allTerminal, stop.signal);
    await faults;
    clearInterval(progress);
    const allDone = !stop.signal.aborted;
    say(allDone ? `all ${dbCounts.total} jobs terminal` : `stopped: ${run.stoppedBy}`);
    halt('finished');
    const stoppedBy = run.stoppedBy === 'finished' ? null : run.stoppedBy;
    const wallMs = at();

    // Watchers have sseGraceMs (watchStop) to see their terminal events.
    await Promise.all(watchers.map((w) => w.done));
    watchStop.abort();
    await poller;

    // What the gateway's connections are doing, when something is left undone (a wedged pool, a lock).
    if (stoppedBy || dbCounts.terminal < dbCounts.total || watchers.some((w) => w.terminal.length !== 1)) {
      const activity = await admin`
        SELECT pid, state, wait_event_type, wait_event, now() - state_change AS in_state, now() - xact_start AS in_xact, left(query, 120) AS query
        FROM pg_stat_activity WHERE datname = ${dbName} ORDER BY pid`.catch(() => []);
      notes.push(
        `the gateway's database sessions before it stopped (${activity.length}): ` +
          activity
            .map((a) => `[${a.pid} ${a.state}${a.wait_event ? ` waiting ${a.wait_event_type}/${a.wait_event}` : ''} for ${a.in_state?.seconds ?? 0}s${a.in_xact ? ` in xact ${a.in_xact.seconds ?? 0}s` : ''}: ${a.query}]`)
            .join(' '),
      );
    }

    // The gateway's change feed is one LISTEN connection: was it there all along (SSE depends on it)?
    if (listeners !== 1 || listenTrail.length > 1) {
      notes.push(`LISTEN connections to ${dbName} (the gateway's change feed; 1 expected, 0 while a gateway restarts): ${listenTrail.join(', ')}`);
    }

    // Quiesce: runners first (they talk to the gateway), then the gateway, so nothing moves under the checks.
    await Promise.all(runners.map((r) => stopService(r, 'SIGTERM', 10_000)));
    await stopService(gateway, 'SIGTERM', 10_000);
    for (const s of services) if (alive(s)) await stopService(s, 'SIGKILL', 1000);

    // ── checks ──
    const rows = await direct`
      SELECT id::text, idempotency_key, params, status, version, attempts, runner_id, lease_expires_at, error_code, error_message,
             images, step, total_steps, created_at, started_at, finished_at
      FROM generations ORDER BY seq`;
    const byId = new Map(rows.map((r) => [r.id as string, r]));
    const describe = (id: string) => {
      const r = byId.get(id);
      if (!r) return `${id}: no row`;
      return (
        `${id}: status=${r.status} version=${r.version} attempts=${r.attempts} runner=${r.runner_id} step=${r.step}/${r.total_steps}` +
        ` lease_expires_at=${r.lease_expires_at ? (r.lease_expires_at as Date).toISOString() : null}` +
        (r.error_code ? ` error=${r.error_code}: ${String(r.error_message).slice(0, 160)}` : '')
      );
    };
    const accepted = jobs.filter((j) => j.id);

    // Exactly one row per accepted job, one id per Idempotency-Key, nothing else.
    const identity: string[] = [];
    for (const j of jobs) {
      if (j.rejected) identity.push(`job ${j.index} rejected: ${j.rejected}`);
      if (j.ids.size > 1) identity.push(`key ${j.key} answered with ${j.ids.size} ids: ${[...j.ids].join(', ')}`);
      if (j.id && !byId.has(j.id)) identity.push(`accepted ${j.id} has no row`);
    }
    const acceptedIds = new Set(accepted.map((j) => j.id!));
    for (const r of rows) if (!acceptedIds.has(r.id as string)) identity.push(`row ${r.id} (key ${r.idempotency_key}) was never accepted: ${describe(r.id as string)}`);
    const perKey = new Map<string, number>();
    for (const r of rows) perKey.set(String(r.idempotency_key), (perKey.get(String(r.idempotency_key)) ?? 0) + 1);
    for (const [k, n] of perKey) if (n > 1) identity.push(`idempotency key ${k} has ${n} rows`);
    check('every accepted id exists exactly once (one row per Idempotency-Key, no duplicates, no strays)', identity);

    const unfinished = rows.filter((r) => !TERMINAL.has(r.status as string));
    check('every job is terminal', unfinished.map((r) => describe(r.id as string)));

    // Terminal exactly once, never left: from the audit trigger.
    const transitions = await direct`SELECT id::text, old_status, new_status, version FROM chaos_transitions ORDER BY at`;
    const once: string[] = [];
    const trail = new Map<string, string[]>();
    for (const t of transitions) {
      const list = trail.get(t.id as string) ?? [];
      list.push(`${t.old_status ?? '∅'}→${t.new_status}@v${t.version}`);
      trail.set(t.id as string, list);
    }
    for (const r of rows) {
      const id = r.id as string;
      const ts = transitions.filter((t) => t.id === id);
      const intoTerminal = ts.filter((t) => TERMINAL.has(t.new_status as string)).length;
      const outOfTerminal = ts.filter((t) => TERMINAL.has(t.old_status as string)).length;
      if (TERMINAL.has(r.status as string) && (intoTerminal !== 1 || outOfTerminal !== 0)) {
        once.push(`${id}: ${trail.get(id)?.join(' ') ?? 'no transitions'}`);
      }
    }
    check('every job entered a terminal status exactly once and never left it', once);

    const failuresByCode: Record<string, string[]> = {};
    for (const r of rows) if (r.status === 'failed') (failuresByCode[String(r.error_code)] ??= []).push(r.id as string);
    const badFailures = Object.entries(failuresByCode)
      .filter(([code]) => !o.toleratedFailureCodes.includes(code))
      .flatMap(([, ids]) => ids.map(describe));
    check(`no failures other than ${o.toleratedFailureCodes.join(' / ')}`, badFailures);
    for (const [code, ids] of Object.entries(failuresByCode)) {
      if (o.toleratedFailureCodes.includes(code)) notes.push(`tolerated failure ${code}: ${ids.map(describe).join('; ')}`);
    }

    const cancelProblems: string[] = [];
    for (const j of accepted) {
      const r = byId.get(j.id!);
      if (!r) continue;
      if (j.cancel === 'applied' && r.status !== 'canceled') cancelProblems.push(`cancel of ${j.id} answered 200 but ${describe(j.id!)}`);
      if (r.status === 'canceled' && j.cancel !== 'applied') cancelProblems.push(`${j.id} canceled though the harness did not cancel it (${j.cancel})`);
    }
    check('a 200 to a cancel means canceled, and only canceled jobs are canceled', cancelProblems);

    // Images: the rows against the folder.
    const generatedDir = path.join(dataDir, 'images', 'generated');
    const folders = await fs.readdir(generatedDir).catch(() => [] as string[]);
    const filesOf = new Map<string, string[]>();
    for (const f of folders) filesOf.set(f, await fs.readdir(path.join(generatedDir, f)));
    const imageProblems: string[] = [];
    let imagesChecked = 0;
    const tmpLeft: string[] = [];
    const objectsOfUnfinished: string[] = [];
    for (const [folder, files] of filesOf) {
      const r = byId.get(folder);
      const pngs = files.filter((f) => !f.endsWith('.tmp'));
      for (const f of files) if (f.endsWith('.tmp')) tmpLeft.push(`${folder}/${f}`);
      if (!r) imageProblems.push(`folder generated/${folder} belongs to no generation: ${files.join(', ')}`);
      else if (r.status !== 'completed' && pngs.length) objectsOfUnfinished.push(`${folder} (${r.status}): ${pngs.join(', ')}`);
    }
    for (const r of rows) {
      if (r.status !== 'completed') continue;
      const id = r.id as string;
      const params = r.params as { num_images: number; width: number; height: number };
      const expected = Array.from({ length: params.num_images }, (_, n) => `generated/${id}/${n}.png`);
      const keys = ((r.images as { key: string }[] | null) ?? []).map((i) => i.key);
      if (JSON.stringify(keys) !== JSON.stringify(expected)) imageProblems.push(`${id}: images ${JSON.stringify(keys)}, expected ${JSON.stringify(expected)}`);
      const pngs = (filesOf.get(id) ?? []).filter((f) => !f.endsWith('.tmp')).sort();
      const want = expected.map((k) => k.split('/').pop()!).sort();
      if (JSON.stringify(pngs) !== JSON.stringify(want)) imageProblems.push(`${id}: files ${JSON.stringify(pngs)} in its folder, expected ${JSON.stringify(want)}`);
      for (const key of expected) {
        const bytes = await fs.readFile(path.join(dataDir, 'images', ...key.split('/'))).catch(() => null);
        if (!bytes) continue; // reported above
        imagesChecked++;
        const w = bytes.length >= 24 ? bytes.readUInt32BE(16) : -1;
        const h = bytes.length >= 24 ? bytes.readUInt32BE(20) : -1;
        if (!bytes.subarray(0, 8).equals(PNG_SIGNATURE) || w !== params.width || h !== params.height) {
          imageProblems.push(`${key}: not a ${params.width}×${params.height} PNG (${bytes.length} bytes, ${w}×${h})`);
        }
      }
    }
    check(`completed jobs have exactly their images, each a PNG (${imagesChecked} checked), and no other stored object`, imageProblems);
    if (objectsOfUnfinished.length) notes.push(`stored images of jobs that did not complete (uploaded before a cancel/failure was seen): ${objectsOfUnfinished.join('; ')}`);
    if (tmpLeft.length) notes.push(`temporary image files left behind (runner killed mid-write): ${tmpLeft.join(', ')}`);

    const outbox = await direct`SELECT generation_id::text AS id, created_at, lease_until FROM dispatch_outbox`;
    check(
      'the dispatch outbox is empty',
      outbox.map((e) => `${e.id} (since ${(e.created_at as Date).toISOString()}, lease ${e.lease_until}): ${describe(e.id as string)}`),
    );
    const leased = rows.filter((r) => r.lease_expires_at !== null && (TERMINAL.has(r.status as string) || (r.lease_expires_at as Date) > new Date()));
    check('no generation holds a lease', leased.map((r) => describe(r.id as string)));

    const sseProblems: string[] = [];
    for (const w of watchers) {
      const r = byId.get(w.id);
      const final = r ? `${r.status}@v${r.version}` : 'no row';
      if (w.terminal.length !== 1) {
        sseProblems.push(
          `${w.id}: ${w.terminal.length} terminal events (${w.terminal.map((t) => `${t.status}@v${t.version}`).join(', ')}); ` +
            `last event ${w.lastStatus}@v${w.lastEventId}, ${w.connections} connections, the last at ${(w.lastConnectAtMs / 1000).toFixed(1)} s; ` +
            `the row is ${final} (finished at ${r?.finished_at ? (((r.finished_at as Date).getTime() - (Date.now() - at())) / 1000).toFixed(1) : '?'} s)`,
        );
      } else if (!r || w.terminal[0]!.status !== r.status || w.terminal[0]!.version !== r.version) {
        sseProblems.push(`${w.id}: terminal event ${w.terminal[0]!.status}@v${w.terminal[0]!.version}, the row is ${final}`);
      } else if (w.afterTerminal !== 0) {
        sseProblems.push(`${w.id}: resuming after the terminal event: ${w.afterTerminal === null ? 'never answered 200' : `${w.afterTerminal} more events`}`);
      }
    }
    check(`every SSE watcher saw exactly one terminal event, matching the row (${watchers.length} watchers)`, sseProblems);

    // The broker, once everyone is stopped: leftovers are redeliveries nobody needed (not violations).
    try {
      const conn = await amqp.connect(o.amqpUrl);
      try {
        const ch = await conn.createChannel();
        const t = topologyFor(prefix);
        const work = await ch.checkQueue(t.workQueue);
        const dead = await ch.checkQueue(t.deadQueue);
        if (work.messageCount || dead.messageCount) {
          notes.push(`messages left in the queues after all stopped: ${work.messageCount} in ${t.workQueue}, ${dead.messageCount} dead-lettered`);
        }
      } finally {
        await conn.close();
      }
    } catch (err) {
      notes.push(`could not inspect the queues: ${(err as Error).message}`);
    }

    // Logs: warnings by message, held messages, and the lines about every id an invariant names.
    const logWarnings: Record<string, number> = {};
    const held = { count: 0, totalWaitMs: 0, maxWaitMs: 0 };
    const deliveries = new Map<string, number>();
    const logFiles = (await fs.readdir(logsDir)).sort();
    const logs: { file: string; lines: string[] }[] = [];
    for (const f of logFiles) logs.push({ file: f, lines: (await fs.readFile(path.join(logsDir, f), 'utf8')).split('\n').filter(Boolean) });
    for (const { file, lines } of logs) {
      for (const line of lines) {
        let entry: { severity?: string; message?: string; wait_ms?: number; id?: string; delivery_count?: number };
        try {
          entry = JSON.parse(line);
        } catch {
          const key = `${file.replace(/-\d+\.log$/, '')}: ${line.slice(0, 100)}`;
          logWarnings[key] = (logWarnings[key] ?? 0) + 1;
          continue;
        }
        if (entry.severity === 'WARNING' || entry.severity === 'ERROR') {
          const key = `${file.replace(/-\d+\.log$/, '')} ${entry.severity}: ${entry.message}`;
          logWarnings[key] = (logWarnings[key] ?? 0) + 1;
        }
        if (entry.id && typeof entry.delivery_count === 'number') {
          deliveries.set(entry.id, Math.max(deliveries.get(entry.id) ?? 0, entry.delivery_count));
        }
        if (entry.message === 'job claimed by another runner; requeued after its lease' || entry.message === 'job skipped: another runner holds its live lease') {
          held.count++;
          held.totalWaitMs += entry.wait_ms ?? 0;
          held.maxWaitMs = Math.max(held.maxWaitMs, entry.wait_ms ?? 0);
        }
      }
    }
    // Jobs near their limits (RUNNER_MAX_ATTEMPTS 3, QUEUE_DELIVERY_LIMIT 5 by default): one fault more and they fail.
    const near = rows.filter((r) => (r.attempts as number) >= 3 || (deliveries.get(r.id as string) ?? 0) >= 4);
    if (near.length) {
      notes.push(
        `jobs near their retry limits: ${near
          .map((r) => `${r.id} ${r.status}: ${r.attempts} claims, delivery ${deliveries.get(r.id as string) ?? '?'} (${trail.get(r.id as string)?.join(' ')})`)
          .join('; ')}`,
      );
    }
    for (const inv of invariants) {
      if (inv.ok) continue;
      const ids = new Set(inv.details.flatMap((d) => d.match(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g) ?? []));
      for (const id of [...ids].slice(0, 5)) {
        const hits = logs.flatMap(({ file, lines }) => lines.filter((l) => l.includes(id)).map((l) => `    ${file}: ${l.slice(0, 400)}`));
        inv.details.push(`  log lines about ${id} (${hits.length}):`, ...hits.slice(0, 12), ...(hits.length > 12 ? [`    … ${hits.length - 12} more`] : []));
        const tr = trail.get(id);
        if (tr) inv.details.push(`  status changes of ${id}: ${tr.join(' ')}`);
      }
    }

    // Numbers.
    const finished = rows.filter((r) => TERMINAL.has(r.status as string) && r.finished_at);
    const latencies = finished.map((r) => ({ id: r.id as string, ms: (r.finished_at as Date).getTime() - (r.created_at as Date).getTime() }));
    const slowest = latencies.reduce<{ id: string; ms: number } | null>((a, b) => (!a || b.ms > a.ms ? b : a), null);
    const span =
      finished.length > 0
        ? Math.max(...finished.map((r) => (r.finished_at as Date).getTime())) - Math.min(...rows.map((r) => (r.created_at as Date).getTime()))
        : 0;
    const finishTimes = finished.map((r) => (r.finished_at as Date).getTime()).sort((a, b) => a - b);
    for (const f of timeline) {
      const next = f.endedAt === undefined ? undefined : finishTimes.find((t) => t >= f.endedAt!);
      if (next !== undefined) f.nextFinishMs = next - f.endedAt!;
    }
    let gap = { ms: 0, from: 0 };
    for (let i = 1; i < finishTimes.length; i++) {
      if (finishTimes[i]! - finishTimes[i - 1]! > gap.ms) gap = { ms: finishTimes[i]! - finishTimes[i - 1]!, from: finishTimes[i - 1]! };
    }
    const runStart = Date.now() - at();
    const attempts: Record<string, number> = {};
    for (const r of rows) attempts[String(r.attempts)] = (attempts[String(r.attempts)] ?? 0) + 1;
    const count = (s: string) => rows.filter((r) => r.status === s).length;

    return {
      ok: invariants.every((i) => i.ok) && !stoppedBy,
      timedOut: stoppedBy?.startsWith('deadline') ?? false,
      stoppedBy,
      wallMs,
      jobs: {
        planned: o.jobs,
        accepted: accepted.length,
        rejected: jobs.filter((j) => j.rejected).length,
        completed: count('completed'),
        failed: count('failed'),
        canceled: count('canceled'),
        unfinished: unfinished.length,
      },
      failuresByCode,
      submit: { ...submit, p95Ms: percentile(submitMs, 95), maxMs: submitMs.length ? Math.max(...submitMs) : NaN },
      cancels,
      faults: { planned: { ...o.faults }, injected, timeline },
      latencyMs: {
        p50: percentile(latencies.map((l) => l.ms), 50),
        p95: percentile(latencies.map((l) => l.ms), 95),
        max: slowest?.ms ?? NaN,
        maxId: slowest?.id ?? null,
      },
      jobsPerSecond: span > 0 ? finished.length / (span / 1000) : 0,
      longestPauseMs: { ms: gap.ms, atMs: gap.ms ? gap.from - runStart : 0 },
      attempts,
      sse: {
        watchers: watchers.length,
        reconnects: watchers.reduce((s, w) => s + w.reconnects, 0),
        maxReconnects: watchers.reduce((m, w) => Math.max(m, w.reconnects), 0),
        connectErrors: sseConnectErrors,
      },
      heldMessages: held,
      logWarnings,
      notes,
      invariants,
      dir: o.keepDir ? dir : null,
    };
  } finally {
    clearTimeout(deadline);
    o.signal?.removeEventListener('abort', onOuterAbort);
    halt('cleanup');
    watchStop.abort();
    for (const s of services) if (alive(s)) await stopService(s, 'SIGKILL', 1000);
    process.off('exit', killAllNow);
    for (const p of proxies) await p.close().catch(() => {});
    await direct?.end({ timeout: 5 }).catch(() => {});
    if (dbCreated) {
      await admin.unsafe(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`).catch((err) => o.log(`could not drop database ${dbName}: ${err}`));
    }
    await admin.end({ timeout: 5 }).catch(() => {});
    await deleteTopology(o.amqpUrl, prefix).catch((err) => o.log(`could not delete queues ${prefix}.*: ${err}`));
    if (!o.keepDir) await fs.rm(dir, { recursive: true, force: true });
  }
}

// ─── the report ────────────────────────────────────────────────────────────────────────────────

const ms = (n: number) => (Number.isFinite(n) ? `${Math.round(n)} ms` : 'n/a');

/** The numbers on three lines. */
export function formatSummary(r: ChaosReport): string {
  const j = r.jobs;
  const faults = Object.entries(r.faults.injected)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  const failed = r.invariants.filter((i) => !i.ok).length;
  return [
    `chaos: ${j.accepted}/${j.planned} accepted → ${j.completed} completed, ${j.failed} failed, ${j.canceled} canceled, ${j.unfinished} unfinished; ` +
      `${r.submit.retries} submit retries, ${r.submit.replayed} replays; faults: ${faults}`,
    `chaos: ${(r.wallMs / 1000).toFixed(1)} s, ${r.jobsPerSecond.toFixed(2)} jobs/s, latency p50 ${ms(r.latencyMs.p50)} p95 ${ms(r.latencyMs.p95)} max ${ms(r.latencyMs.max)}; ` +
      `${r.sse.watchers} SSE watchers, ${r.sse.reconnects} reconnects`,
    `chaos: invariants ${r.invariants.length - failed}/${r.invariants.length} held${r.stoppedBy ? `; stopped early: ${r.stoppedBy}` : ''}`,
  ].join('\n');
}

export function formatReport(r: ChaosReport, maxDetails = 20): string {
  const lines: string[] = [];
  const j = r.jobs;
  const kinds = Object.entries(r.faults.injected)
    .map(([k, n]) => `${k} ${n}${k in r.faults.planned ? `/${r.faults.planned[k as FaultKind]}` : ''}`)
    .join(', ');
  lines.push('──── chaos run ────');
  if (r.stoppedBy) lines.push(`STOPPED EARLY: ${r.stoppedBy}`);
  lines.push(`jobs              ${j.accepted}/${j.planned} accepted${j.rejected ? `, ${j.rejected} rejected` : ''}: ${j.completed} completed, ${j.failed} failed, ${j.canceled} canceled, ${j.unfinished} unfinished`);
  if (j.failed) lines.push(`failures          ${Object.entries(r.failuresByCode).map(([c, ids]) => `${c} ×${ids.length}`).join(', ')}`);
  lines.push(`submits           ${r.submit.requests} requests, ${r.submit.retries} retries (${Object.entries(r.submit.retriesByReason).map(([k, n]) => `${k} ×${n}`).join(', ') || 'none'}), ${r.submit.replayed} idempotent replays`);
  lines.push(`                  first try → 202 (retries included): p95 ${ms(r.submit.p95Ms)}, max ${ms(r.submit.maxMs)}`);
  if (r.submit.timeoutsAtMs.length) {
    lines.push(`                  submits timed out (no answer in 10 s) at ${r.submit.timeoutsAtMs.map((t) => `${(t / 1000).toFixed(1)} s`).join(', ')}`);
  }
  lines.push(`cancels           ${r.cancels.requested} requested: ${r.cancels.applied} applied, ${r.cancels.alreadyFinished} already finished${r.cancels.errors ? `, ${r.cancels.errors} errors` : ''}`);
  lines.push(`faults (inj/plan) ${kinds}`);
  for (const f of r.faults.timeline.filter((t) => t.kind !== 'cancel')) {
    const next = f.nextFinishMs === undefined ? 'no job finished after it' : `next job finished ${ms(f.nextFinishMs)} after it`;
    lines.push(`  ${(f.atMs / 1000).toFixed(1).padStart(6)} s  ${f.kind.padEnd(14)} ${f.detail} (${f.tookMs} ms; ${next})`);
  }
  lines.push(`wall time         ${(r.wallMs / 1000).toFixed(1)} s (start-up included)`);
  lines.push(`throughput        ${r.jobsPerSecond.toFixed(2)} jobs/s (first created → last finished)`);
  lines.push(`longest pause     ${ms(r.longestPauseMs.ms)} without a job finishing, from ${(r.longestPauseMs.atMs / 1000).toFixed(1)} s`);
  lines.push(`latency           created → finished: p50 ${ms(r.latencyMs.p50)}, p95 ${ms(r.latencyMs.p95)}, max ${ms(r.latencyMs.max)}${r.latencyMs.maxId ? ` (${r.latencyMs.maxId})` : ''}`);
  lines.push(`claims per job    ${Object.entries(r.attempts).sort(([a], [b]) => Number(a) - Number(b)).map(([a, n]) => `${a}: ${n}`).join(', ')}`);
  lines.push(`SSE               ${r.sse.watchers} watchers, ${r.sse.reconnects} reconnects (max ${r.sse.maxReconnects} for one), failed connects: ${Object.entries(r.sse.connectErrors).map(([k, n]) => `${k} ×${n}`).join(', ') || 'none'}`);
  lines.push(`live-lease skips  ${r.heldMessages.count} redelivered messages met another runner's live lease; held ${ms(r.heldMessages.totalWaitMs)} in all, max ${ms(r.heldMessages.maxWaitMs)}`);
  const warnings = Object.entries(r.logWarnings).sort((a, b) => b[1] - a[1]);
  if (warnings.length) {
    lines.push('log warnings/errors');
    for (const [k, n] of warnings.slice(0, 15)) lines.push(`  ${String(n).padStart(5)}  ${k}`);
  }
  for (const n of r.notes) lines.push(`note: ${n.length > 2000 ? `${n.slice(0, 2000)}…` : n}`);
  lines.push('invariants');
  for (const inv of r.invariants) {
    lines.push(`  ${inv.ok ? 'PASS' : `FAIL (${inv.violations})`}  ${inv.name}`);
    for (const d of inv.details.slice(0, maxDetails)) lines.push(`        ${d}`);
    if (inv.details.length > maxDetails) lines.push(`        … ${inv.details.length - maxDetails} more`);
  }
  if (r.dir) lines.push(`kept: ${r.dir}`);
  lines.push(r.ok ? 'RESULT: PASS' : 'RESULT: FAIL');
  return lines.join('\n');
}
