// `npm run bench:gateway`: throughput and latency of the gateway on real PostgreSQL and RabbitMQ,
// next to the raw single-row insert limit of the same PostgreSQL, in one run of about a minute.
//
// Phases: (1) pgbench inserts into a scratch table, the ceiling any submit path could reach, then
// the submit statement itself from pgbench (scripts/bench/pgbench.ts: 1 and 16 rows a statement);
// (2) POST /v1/generations at 1, 16 and 64 connections; (3) GET /v1/generations/{id} at 64;
// (4) dispatch latency, from a submit's HTTP response to the job message reaching a consumer;
// (4b) the history list at 100k generations of one key, each status filter beside the unfiltered
// list, and what the history index costs writes (history.ts);
// (5) what tracing costs: submits at 16 connections with traces off, sampled at 100 % and at 10 %
// (OTLP/HTTP protobuf to a sink in this process), five rounds of one run per mode; then each at a
// fixed rate all keep up with, five rounds again, for the gateway's CPU time per submit. A mode's
// figure is the median over rounds of its ratio to the untraced run of the same round: runs of
// one round are seconds apart, so a neighbour's load falls on both sides of each ratio.
// Everything runs against a scratch database and a per-run queue prefix, both removed at the end.
//
// The gateway and the load generator are separate child processes (gateway-server.ts,
// load-worker.ts): on a 2-core machine a shared event loop would measure the generator, not the
// gateway. Each phase also reports how many cores the gateway, PostgreSQL, RabbitMQ and the load
// generator used, which is where a miss is first diagnosed.
//
// Exits 1 when any request failed (non-2xx, socket error, timeout) or a job message never
// arrived; a missed performance target is reported, not fatal.
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import amqp from 'amqplib';
import postgres from 'postgres';
import { topologyFor } from '../../src/queue/rabbitmq.ts';
import type { LoadJob, LoadResult } from './load-worker.ts';
import { historyPhase, historySummary, printHistory } from './history.ts';
import { pgbench, submitStatementRates } from './pgbench.ts';
import { ADMIN_URL, AMQP_URL, createBenchKey, failures, fmtInt, fmtMs, pad, percentile, removeQueues, runBench, scratchDatabase, spawnUntilReady, stopChild, teardownOnce, verdict } from './common.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const DB_NAME = 'itemgen_bench';
const PREFIX = `bench-${Date.now()}`;
const POOL_SIZE = 32;
const LEVELS = [1, 16, 64];
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 9);
// The gateway's per-key rate limits (RATE_LIMIT_SUBMIT and _REQUEST): off by default, so the bench
// measures the gateway; BENCH_RATE_LIMIT=9999999/60 measures it with the shared token buckets on
// (a quota no phase reaches, so every request pays for the limiter and none is refused).
const RATE_LIMIT = process.env.BENCH_RATE_LIMIT ?? 'off';
const WARMUP_S = 2;
const READ_IDS = 2000;
const DISPATCH_JOBS = 400;
const DISPATCH_INTERVAL_MS = 10;
const TRACE_CONNECTIONS = 16;
/** Three gateways at once stay within PostgreSQL's max_connections, and 16 connections keep each busy. */
const TRACE_POOL_SIZE = 16;
const TRACE_RUNS = 5;
/** Fixed-rate runs per mode, and their rate as a share of the slowest mode's median throughput. */
const FIXED_RUNS = 5;
const FIXED_DURATION_S = 6;
const FIXED_RATE_SHARE = 0.6;
const TRACE_DURATION_S = Number(process.env.BENCH_TRACE_DURATION_S ?? 5);
/** Tracing modes compared; `ratio` null: traces off (no OTEL_* variable at all). */
const TRACE_MODES = [
  { name: 'off', ratio: null },
  { name: '100 %', ratio: 1 },
  { name: '10 %', ratio: 0.1 },
] as const;

const TARGETS = {
  rawRatioAt64: 0.5,
  p99At64Ms: 50,
  submitsAt1: 800,
  readsAt64: 5000,
  dispatchP50Ms: 10,
  /** Submit throughput with 10 % of traces sampled, against traces off. */
  tracedRatioAt10: 0.95,
};

const SUBMIT_BODY = JSON.stringify({ prompt: 'tsuki_advtr, a glowing sword', num_inference_steps: 30 });
// What the gateway stores for SUBMIT_BODY (defaults and a seed filled in), so pgbench writes rows
// of the same size.
const STORED_PARAMS = JSON.stringify({
  prompt: 'tsuki_advtr, a glowing sword',
  negative_prompt: '',
  num_inference_steps: 30,
  guidance_scale: 7.5,
  seed: 1234567890,
  width: 512,
  height: 512,
  scheduler: 'ddim',
  num_images: 1,
});

// ---------------------------------------------------------------------------------------------
// CPU accounting from /proc: cores used per process group over a phase. Absent off Linux.

const TICKS_PER_S = 100; // USER_HZ; 100 on every Linux this runs on.
type CpuGroups = { gateway: number[]; load: number[]; pgbench?: number[] };
type CpuSample = { at: number; byPid: Map<number, number>; comm: Map<number, string>; idle: number; total: number };
interface CpuUse {
  gateway: number;
  postgres: number;
  rabbitmq: number;
  load: number;
  /** Busy cores not accounted for above: another workload on the machine, which skews the phase. */
  other: number;
  idle: number;
}

function readCpuSample(): CpuSample | null {
  if (!fs.existsSync('/proc/stat')) return null;
  const byPid = new Map<number, number>();
  const comm = new Map<number, string>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const fields = stat.slice(close + 2).split(' ');
      // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
      byPid.set(Number(entry), Number(fields[11]) + Number(fields[12]));
      comm.set(Number(entry), stat.slice(stat.indexOf('(') + 1, close));
    } catch {
      // The process exited between readdir and read.
    }
  }
  const cpu = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  return { at: performance.now(), byPid, comm, idle: cpu[3]! + (cpu[4] ?? 0), total: cpu.reduce((a, b) => a + b, 0) };
}

function cpuUse(a: CpuSample | null, b: CpuSample | null, groups: CpuGroups): CpuUse | null {
  if (!a || !b) return null;
  const seconds = (b.at - a.at) / 1000;
  const delta = (pid: number) => ((b.byPid.get(pid) ?? 0) - (a.byPid.get(pid) ?? 0)) / TICKS_PER_S / seconds;
  const byComm = (name: string) => {
    let sum = 0;
    // A process born during the phase counts from zero; one that died is lost (rare: pools persist).
    for (const [pid, c] of b.comm) if (c === name) sum += delta(pid);
    return sum;
  };
  const sumPids = (pids: number[]) => pids.reduce((s, p) => s + delta(p), 0);
  const cores = os.cpus().length;
  const total = b.total - a.total;
  const idle = total > 0 ? ((b.idle - a.idle) / total) * cores : 0;
  const use = {
    gateway: sumPids(groups.gateway),
    postgres: byComm('postgres'),
    rabbitmq: byComm('beam.smp'),
    // The bench process itself is a load generator too (dispatch phase, bookkeeping).
    load: sumPids([process.pid, ...groups.load, ...(groups.pgbench ?? [])]),
  };
  const known = use.gateway + use.postgres + use.rabbitmq + use.load;
  return { ...use, other: Math.max(0, cores - idle - known), idle };
}

const fmtCpu = (u: CpuUse | null) =>
  u
    ? `gw ${u.gateway.toFixed(2)} · pg ${u.postgres.toFixed(2)} · mq ${u.rabbitmq.toFixed(2)} · load ${u.load.toFixed(2)} · other ${u.other.toFixed(2)} · idle ${u.idle.toFixed(2)}`
    : 'n/a';

// ---------------------------------------------------------------------------------------------
// Small helpers.

// ---------------------------------------------------------------------------------------------
// Phase 1: the raw insert limit, with pgbench and nothing else running.

interface RawResult {
  tps: number;
  latencyAvgMs: number;
  cpu: CpuUse | null;
}

async function rawInsertLimit(benchUrl: string, bench: postgres.Sql): Promise<RawResult> {
  await bench.unsafe(`CREATE TABLE raw_jobs (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    params jsonb NOT NULL,
    status text NOT NULL DEFAULT 'pending',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now())`);
  try {
    let cpu: CpuUse | null = null;
    const r = await pgbench(benchUrl, `INSERT INTO raw_jobs (params) VALUES ('${STORED_PARAMS}')`, {
      clients: 64,
      seconds: 10,
      // pgbench spends its first moment connecting 64 clients; measure CPU over the steady part.
      during: async (pid) => {
        await sleep(1000);
        const before = readCpuSample();
        await sleep(8000);
        cpu = cpuUse(before, readCpuSample(), { gateway: [], load: [], pgbench: [pid] });
      },
    });
    return { ...r, cpu };
  } finally {
    await bench.unsafe('DROP TABLE raw_jobs');
  }
}

// ---------------------------------------------------------------------------------------------
// Child processes: the gateway and the load generator.

/** The gateway under test; what it says on stderr is shown (it logs at warn, so every line matters). */
async function startGatewayProcess(env: Record<string, string>): Promise<{ child: ChildProcess; url: string }> {
  const started = spawnUntilReady({
    name: 'gateway',
    args: [path.join(HERE, 'gateway-server.ts')],
    env,
    ready: /^listening (\S+)/,
    forward: (line) => !line.startsWith('listening'),
  });
  return { child: started.child, url: await started.ready };
}

function startLoadWorker(): { child: ChildProcess; run(job: LoadJob): Promise<LoadResult> } {
  const child = fork(path.join(HERE, 'load-worker.ts'), [], { execArgv: ['--import', 'tsx'], stdio: 'inherit' });
  return {
    child,
    run: (job) =>
      new Promise((resolve, reject) => {
        const onExit = (code: number | null) => reject(new Error(`load worker exited with ${code}`));
        child.once('exit', onExit);
        child.once('message', (m: { ok: true; result: LoadResult } | { ok: false; error: string }) => {
          child.off('exit', onExit);
          if (m.ok) resolve(m.result);
          else reject(new Error(`load worker: ${m.error}`));
        });
        child.send(job);
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// Phase 5: the cost of tracing.

/** An OTLP/HTTP receiver that only counts what it is sent: the collector's part, at no cost to measure. */
async function startTraceSink(): Promise<{ url: string; exports: () => { requests: number; bytes: number }; close(): Promise<void> }> {
  let requests = 0;
  let bytes = 0;
  const server = http.createServer((req, res) => {
    req.on('data', (c: Buffer) => (bytes += c.length));
    req.on('end', () => {
      requests++;
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    exports: () => ({ requests, bytes }),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

interface TraceModeResult {
  name: string;
  rps: number[];
  /** The gateway's CPU time per accepted submit, µs: what a busy neighbour distorts least. */
  cpuUs: number[];
  /** The same at the fixed rate, µs per submit. */
  fixedCpuUs: number[];
  failed: number;
}

/** A process's CPU time so far (user + system), seconds; NaN off Linux. */
function processCpuSeconds(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_S;
  } catch {
    return NaN;
  }
}

/**
 * One gateway per mode, all started up front and loaded in turn, round after round, each round
 * starting one mode later, so drift on the machine (growing tables, autovacuum, a neighbour) falls
 * on every mode alike; each run drains before the next.
 */
async function tracingCost(
  env: Record<string, string>,
  run: (url: string, durationS: number, rate?: number) => Promise<LoadResult>,
  drain: () => Promise<void>,
  gateways: ChildProcess[],
): Promise<{ modes: TraceModeResult[]; fixedRate: number; exported: { requests: number; bytes: number } }> {
  const sink = await startTraceSink();
  try {
    const started: { child: ChildProcess; url: string }[] = [];
    for (const mode of TRACE_MODES) {
      const traced: Record<string, string> =
        mode.ratio === null
          ? {}
          : {
              OTEL_TRACES_EXPORTER: 'otlp',
              OTEL_EXPORTER_OTLP_ENDPOINT: sink.url,
              OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
              OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
              OTEL_TRACES_SAMPLER_ARG: String(mode.ratio),
              OTEL_SERVICE_NAME: 'itemgen-gateway-bench',
            };
      const gateway = await startGatewayProcess({ ...env, ...traced });
      gateways.push(gateway.child);
      started.push(gateway);
    }
    const modes: TraceModeResult[] = TRACE_MODES.map((m) => ({ name: m.name, rps: [], cpuUs: [], fixedCpuUs: [], failed: 0 }));
    for (let round = 0; round < TRACE_RUNS; round++) {
      // Each round starts with the next mode: every run adds rows and later runs are slower for it,
      // so a fixed order would charge that drift to whichever mode always came last.
      for (let k = 0; k < started.length; k++) {
        const i = (k + round) % started.length;
        const { child, url } = started[i]!;
        await run(url, 1); // warm-up: connections opened, JIT warm
        const cpu0 = processCpuSeconds(child.pid!);
        const r = await run(url, TRACE_DURATION_S);
        const cpu1 = processCpuSeconds(child.pid!);
        await drain();
        modes[i]!.rps.push(r.ok / r.durationS);
        modes[i]!.cpuUs.push(((cpu1 - cpu0) / r.ok) * 1e6);
        modes[i]!.failed += failures(r);
      }
    }
    // Then the same submits at a fixed rate every mode keeps up with: no run is saturated, so the
    // gateway's CPU time per submit is what tracing adds, not how the machine shared its cores.
    const fixedRate = Math.max(50, Math.round(FIXED_RATE_SHARE * Math.min(...modes.map((m) => percentile(m.rps, 50)))));
    for (let round = 0; round < FIXED_RUNS; round++) {
      for (let k = 0; k < started.length; k++) {
        const i = (k + round) % started.length;
        const { child, url } = started[i]!;
        const cpu0 = processCpuSeconds(child.pid!);
        const r = await run(url, FIXED_DURATION_S, fixedRate);
        const cpu1 = processCpuSeconds(child.pid!);
        await drain();
        modes[i]!.fixedCpuUs.push(((cpu1 - cpu0) / r.ok) * 1e6);
        modes[i]!.failed += failures(r);
      }
    }
    // Stopped while the sink still listens: their last spans are exported, not refused.
    for (const { child } of started) await stopChild(child, 'SIGTERM', 10_000);
    return { modes, fixedRate, exported: sink.exports() };
  } finally {
    await sink.close();
  }
}

// ---------------------------------------------------------------------------------------------
// The run.

interface LevelResult extends LoadResult {
  connections: number;
  rps: number;
  failed: number;
  warmupFailed: number;
  pendingAtStart: number;
  backlog: number;
  perPublish: number;
  cpu: CpuUse | null;
}

interface DispatchResult {
  delivered: number;
  missing: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  submitP50Ms: number;
}

const describeFailures = (r: LoadResult) => {
  const codes = Object.entries(r.statuses).filter(([c]) => !c.startsWith('2'));
  const parts = codes.map(([c, n]) => `${n}×${c}`);
  if (r.errors) parts.push(`${r.errors} socket errors`);
  if (r.timeouts) parts.push(`${r.timeouts} timeouts`);
  return parts.join(', ');
};

async function main(): Promise<number> {
  const db = scratchDatabase(ADMIN_URL, DB_NAME);
  let bench: postgres.Sql | null = null;
  let gateway: ChildProcess | null = null;
  const tracedGateways: ChildProcess[] = [];
  let load: ReturnType<typeof startLoadWorker> | null = null;
  let mq: amqp.ChannelModel | null = null;

  // Ctrl-C still removes the children, the queues and the scratch database.
  const teardown = teardownOnce(async () => {
    await stopChild(load?.child ?? null, 'SIGTERM', 5000);
    await stopChild(gateway, 'SIGTERM', 10_000);
    for (const g of tracedGateways) await stopChild(g, 'SIGTERM', 10_000);
    if (mq) await mq.close().catch(() => {});
    await removeQueues(AMQP_URL, PREFIX);
    if (bench) await bench.end({ timeout: 5 });
    await db.remove();
  });

  try {
    await db.create();
    bench = postgres(db.url, { max: 1, onnotice: () => {} });
    const pgVersion = String((await db.admin`SHOW server_version`)[0]!.server_version);
    console.log(`itemgen gateway bench — ${os.cpus().length} CPUs, node ${process.version}, PostgreSQL ${pgVersion}`);
    console.log(`scratch database ${DB_NAME}, queue prefix ${PREFIX}, pool ${POOL_SIZE}, ${DURATION_S} s per level, rate limits ${RATE_LIMIT}\n`);

    // 1. Raw insert limit, before the gateway holds any connections (max_connections is finite).
    const raw = await rawInsertLimit(db.url, bench);
    console.log(`raw insert limit (pgbench, 64 clients, prepared, 10 s): ${fmtInt(raw.tps)} inserts/s, avg ${fmtMs(raw.latencyAvgMs)} ms`);
    console.log(`  cpu cores: ${fmtCpu(raw.cpu)} (load = pgbench)\n`);

    // 2. Key, gateway, load generator.
    const apiKey = await createBenchKey(db.url, 'bench');
    // The submit statement from pgbench too (decision 17); it leaves the tables empty for the gateway.
    const statement = await submitStatementRates(db.url, bench, JSON.parse(STORED_PARAMS));
    console.log(`submit statement (pgbench, ${statement.clients} clients, prepared, 5 s each; rows/s):`);
    console.log(`  plain INSERT into generations ${fmtInt(statement.plainInsert)} · insertGenerations 1 row ${fmtInt(statement.oneRow)} · ${statement.batchRows} rows ${fmtInt(statement.batched)}\n`);
    const gatewayEnv = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? os.tmpdir(),
      DATABASE_URL: db.url,
      DATABASE_POOL_SIZE: String(POOL_SIZE),
      AMQP_URL,
      AMQP_PREFIX: PREFIX,
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: 'warn',
      RATE_LIMIT_SUBMIT: RATE_LIMIT,
      RATE_LIMIT_REQUEST: RATE_LIMIT,
    };
    const started = await startGatewayProcess(gatewayEnv);
    gateway = started.child;
    const baseUrl = started.url;
    load = startLoadWorker();
    const auth = { authorization: `Bearer ${apiKey}` };
    const submitJob = (connections: number, durationS: number, url = baseUrl, rate?: number): LoadJob => ({
      url,
      connections,
      durationS,
      ...(rate ? { rate } : {}),
      method: 'POST',
      path: '/v1/generations',
      headers: { ...auth, 'content-type': 'application/json' },
      body: SUBMIT_BODY,
    });
    const undispatched = async () =>
      Number((await bench!`SELECT count(*)::int AS n FROM dispatch_outbox`)[0]!.n);
    /** Waits (bounded) for the dispatcher to publish everything, so a phase does not inherit work. */
    const drain = async () => {
      const t0 = performance.now();
      while ((await undispatched()) > 0 && performance.now() - t0 < 60_000) await sleep(100);
    };
    const groups = (): CpuGroups => ({ gateway: [gateway!.pid!], load: [load!.child.pid!] });
    const pending = async () =>
      Number((await bench!`SELECT count(*)::int AS n FROM generations WHERE status = 'pending'`)[0]!.n);
    /** The dispatcher's batch histogram, to tell one publish per submit from coalesced batches. */
    const dispatchCounters = async () => {
      const text = await (await fetch(`${baseUrl}/metrics`)).text();
      const read = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
      return { messages: read('itemgen_dispatch_batch_size_sum'), batches: read('itemgen_dispatch_batch_size_count') };
    };

    console.log('POST /v1/generations');
    console.log(
      `${pad('conns', 6)} ${pad('req/s', 8)} ${pad('p50 ms', 8)} ${pad('p99 ms', 8)} ${pad('failed', 7)} ${pad('pending', 8)} ${pad('backlog', 8)} ${pad('msg/pub', 8)}`,
    );
    const levels: LevelResult[] = [];
    for (const connections of LEVELS) {
      const warm = await load.run(submitJob(connections, WARMUP_S));
      await drain();
      // The key's unfinished jobs: the cap check reads one counter row, however many there are.
      const pendingAtStart = await pending();
      const d0 = await dispatchCounters();
      const before = readCpuSample();
      const r = await load.run(submitJob(connections, DURATION_S));
      const after = readCpuSample();
      // Jobs committed but not yet published when the load stops: whether the dispatcher keeps up.
      const backlog = await undispatched();
      await drain();
      const d1 = await dispatchCounters();
      const level: LevelResult = {
        ...r,
        connections,
        rps: r.ok / r.durationS,
        failed: failures(r),
        warmupFailed: failures(warm),
        pendingAtStart,
        backlog,
        perPublish: (d1.messages - d0.messages) / (d1.batches - d0.batches),
        cpu: cpuUse(before, after, groups()),
      };
      levels.push(level);
      console.log(
        `${pad(connections, 6)} ${pad(fmtInt(level.rps), 8)} ${pad(fmtMs(r.p50Ms), 8)} ${pad(fmtMs(r.p99Ms), 8)} ${pad(level.failed + level.warmupFailed, 7)} ${pad(fmtInt(pendingAtStart), 8)} ${pad(fmtInt(backlog), 8)} ${pad(Number.isFinite(level.perPublish) ? level.perPublish.toFixed(1) : '-', 8)}`,
      );
      console.log(`${pad('', 6)} cpu cores: ${fmtCpu(level.cpu)}`);
      if (level.failed) console.log(`       failures: ${describeFailures(r)}`);
      if (level.warmupFailed) console.log(`       warm-up failures: ${describeFailures(warm)}`);
    }
    console.log(
      `  pending = the key's unfinished jobs when the level starts; backlog = committed but unpublished when it ends;\n  msg/pub = messages per dispatcher publish batch`,
    );
    const rows = Number((await bench`SELECT count(*)::int AS n FROM generations`)[0]!.n);
    // Production PostgreSQL (Cloud SQL) keeps statistics fresh with autovacuum; the server on the
    // development machines runs with it off, where the planner would take the table for empty and
    // read every pending entry to count 100. Analyze once, as autovacuum would have.
    await bench`ANALYZE generations`;

    // 3. Status reads over ids spread through the table. All are still pending (no runner here), so
    // each read also counts its queue position, as a client polling a queued job makes it do.
    const ids = (await bench`SELECT id FROM generations ORDER BY random() LIMIT ${READ_IDS}`).map((r) => String(r.id));
    const readJob = (durationS: number): LoadJob => ({
      url: baseUrl,
      connections: 64,
      durationS,
      method: 'GET',
      headers: auth,
      paths: ids.map((id) => `/v1/generations/${id}`),
    });
    const readWarm = await load.run(readJob(WARMUP_S));
    const rb = readCpuSample();
    const reads = await load.run(readJob(DURATION_S));
    const ra = readCpuSample();
    const readCpu = cpuUse(rb, ra, groups());
    const readRps = reads.ok / reads.durationS;
    const readFailed = failures(reads) + failures(readWarm);
    console.log(`\nGET /v1/generations/{id} (${ids.length} random ids of ${fmtInt(rows)} rows, all pending)`);
    console.log(`${pad('conns', 6)} ${pad('req/s', 8)} ${pad('p50 ms', 8)} ${pad('p99 ms', 8)} ${pad('failed', 7)}`);
    console.log(`${pad(64, 6)} ${pad(fmtInt(readRps), 8)} ${pad(fmtMs(reads.p50Ms), 8)} ${pad(fmtMs(reads.p99Ms), 8)} ${pad(readFailed, 7)}`);
    console.log(`${pad('', 6)} cpu cores: ${fmtCpu(readCpu)}`);
    if (readFailed) console.log(`       failures: ${describeFailures(reads)} ${describeFailures(readWarm)}`);

    // 4. Dispatch latency: a consumer here, paced submits from here (one connection), matched by id.
    const topology = topologyFor(PREFIX);
    mq = await amqp.connect(AMQP_URL);
    const ch = await mq.createChannel();
    await drain();
    await ch.purgeQueue(topology.workQueue); // the earlier phases' messages: nobody consumed them.
    const deliveredAt = new Map<string, number>();
    await ch.prefetch(1000);
    await ch.consume(
      topology.workQueue,
      (msg) => {
        if (!msg) return;
        const at = performance.now();
        try {
          const id = (JSON.parse(msg.content.toString('utf8')) as { id?: string }).id;
          if (id && !deliveredAt.has(id)) deliveredAt.set(id, at);
        } finally {
          ch.ack(msg);
        }
      },
      { noAck: false },
    );
    const respondedAt = new Map<string, number>();
    const submitMs: number[] = [];
    let dispatchFailed = 0;
    const t0 = performance.now();
    for (let i = 0; i < DISPATCH_JOBS; i++) {
      // Steady pacing against the clock, so a slow response does not shift every later submit.
      const wait = t0 + i * DISPATCH_INTERVAL_MS - performance.now();
      if (wait > 0) await sleep(wait);
      const sent = performance.now();
      const res = await fetch(`${baseUrl}/v1/generations`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: SUBMIT_BODY,
      });
      const at = performance.now(); // headers in: the row is committed
      await res.arrayBuffer();
      const id = res.headers.get('location')?.split('/').pop();
      if (res.status !== 202 || !id) {
        dispatchFailed++;
        continue;
      }
      respondedAt.set(id, at);
      submitMs.push(at - sent);
    }
    for (let waited = 0; waited < 10_000 && [...respondedAt.keys()].some((id) => !deliveredAt.has(id)); waited += 50) {
      await sleep(50);
    }
    const lat = [...respondedAt].filter(([id]) => deliveredAt.has(id)).map(([id, at]) => deliveredAt.get(id)! - at);
    const dispatch: DispatchResult = {
      delivered: lat.length,
      missing: respondedAt.size - lat.length,
      p50Ms: percentile(lat, 50),
      p99Ms: percentile(lat, 99),
      maxMs: Math.max(...lat),
      submitP50Ms: percentile(submitMs, 50),
    };
    await mq.close();
    mq = null;
    console.log(
      `\ndispatch latency (submit response → consumer delivery, ${DISPATCH_JOBS} jobs at ${1000 / DISPATCH_INTERVAL_MS}/s, 1 conn)`,
    );
    console.log(
      `  p50 ${fmtMs(dispatch.p50Ms)} ms · p99 ${fmtMs(dispatch.p99Ms)} ms · max ${fmtMs(dispatch.maxMs)} ms · delivered ${dispatch.delivered}/${respondedAt.size} · submit p50 ${fmtMs(dispatch.submitP50Ms)} ms · failed ${dispatchFailed}`,
    );

    // 4b. The history list, filtered and not, at 100k rows of a key of its own (history.ts).
    const history = await historyPhase({ databaseUrl: db.url, gatewayUrl: baseUrl, load: (job) => load!.run(job), storedParams: STORED_PARAMS });
    printHistory(history);

    // 5. Tracing's cost: submits with traces off, sampled at 100 % and at 10 %, each on a gateway
    // of its own; the one above is done and gives its connections back first.
    await stopChild(gateway, 'SIGTERM', 10_000);
    gateway = null;
    const tracing = await tracingCost(
      { ...gatewayEnv, DATABASE_POOL_SIZE: String(TRACE_POOL_SIZE) },
      (url, durationS, rate) => load!.run(submitJob(TRACE_CONNECTIONS, durationS, url, rate)),
      drain,
      tracedGateways,
    );
    const median = (xs: number[]) => percentile(xs, 50);
    /** Per round, `a`'s figure over `b`'s: the median of these is what a mode costs (see the header). */
    const perRound = (a: number[], b: number[]) => a.map((x, r) => x / b[r]!);
    console.log(`\ntracing cost (POST /v1/generations, ${TRACE_CONNECTIONS} conns, ${TRACE_RUNS} runs of ${TRACE_DURATION_S} s per mode, interleaved)`);
    const pct = (x: number) => (x * 100).toFixed(1) + '%';
    console.log(`${pad('traces', 7)} ${pad('min', 7)} ${pad('median', 7)} ${pad('max', 7)} ${pad('vs off', 7)} ${pad('cpu µs', 7)} ${pad('vs off', 7)} ${pad('failed', 7)}  vs off, each round`);
    for (const m of tracing.modes) {
      const cpu = median(m.cpuUs);
      const rounds = perRound(m.rps, tracing.modes[0]!.rps);
      console.log(
        `${pad(m.name, 7)} ${pad(fmtInt(Math.min(...m.rps)), 7)} ${pad(fmtInt(median(m.rps)), 7)} ${pad(fmtInt(Math.max(...m.rps)), 7)} ${pad(pct(median(rounds)), 7)} ${pad(fmtInt(cpu), 7)} ${pad(pct(median(perRound(m.cpuUs, tracing.modes[0]!.cpuUs))), 7)} ${pad(m.failed, 7)}  ${rounds.map(pct).join(' ')}`,
      );
    }
    console.log(
      `  req/s (min, median, max of ${TRACE_RUNS}); vs off = the median over rounds of the ratio to the same round's untraced run;\n  cpu µs = the gateway's CPU time per submit (median), the figure a busy machine skews least;\n  exported to the sink: ${fmtInt(tracing.exported.requests)} OTLP requests, ${(tracing.exported.bytes / 1e6).toFixed(1)} MB`,
    );
    const offFixed = median(tracing.modes[0]!.fixedCpuUs);
    console.log(`\n at a fixed ${fmtInt(tracing.fixedRate)} submits/s (${FIXED_RUNS} runs of ${FIXED_DURATION_S} s per mode, interleaved): the gateway's CPU per submit`);
    console.log(`${pad('traces', 7)} ${pad('min µs', 7)} ${pad('median', 7)} ${pad('max', 7)} ${pad('vs off', 7)} ${pad('capacity', 9)}  capacity, each round`);
    const capacities = tracing.modes.map((m) => perRound(tracing.modes[0]!.fixedCpuUs, m.fixedCpuUs));
    tracing.modes.forEach((m, i) => {
      const cpu = median(m.fixedCpuUs);
      console.log(
        `${pad(m.name, 7)} ${pad(fmtInt(Math.min(...m.fixedCpuUs)), 7)} ${pad(fmtInt(cpu), 7)} ${pad(fmtInt(Math.max(...m.fixedCpuUs)), 7)} ${pad(pct(cpu / offFixed), 7)} ${pad(pct(median(capacities[i]!)), 9)}  ${capacities[i]!.map(pct).join(' ')}`,
      );
    });
    console.log("  capacity = untraced CPU per submit / this mode's, in the same round (median over rounds): the throughput a gateway bound by its own CPU keeps");
    const tracedRatio = median(perRound(tracing.modes[2]!.rps, tracing.modes[0]!.rps));
    const tracedCapacity = median(capacities[2]!);
    const tracingFailed = tracing.modes.reduce((sum, m) => sum + m.failed, 0);

    // Summary.
    const at = (c: number) => levels.find((l) => l.connections === c)!;
    const l1 = at(1);
    const l64 = at(64);
    const ratio = l64.rps / raw.tps;
    const submitFailures = levels.reduce((s, l) => s + l.failed + l.warmupFailed, 0);
    const totalFailures = submitFailures + readFailed + dispatchFailed + dispatch.missing + tracingFailed + history.failed;
    const lines = [
      `raw inserts/s @64 (pgbench)    ${pad(fmtInt(raw.tps), 7)}   avg ${fmtMs(raw.latencyAvgMs)} ms`,
      ...levels.map(
        (l) => `submits/s @${pad(l.connections, 2)}                ${pad(fmtInt(l.rps), 7)}   p50 ${pad(fmtMs(l.p50Ms), 5)} ms  p99 ${pad(fmtMs(l.p99Ms), 5)} ms`,
      ),
      `submits @64 / raw inserts      ${pad((ratio * 100).toFixed(1) + '%', 7)}`,
      `statement rows/s @64 (pgbench) ${pad(fmtInt(statement.oneRow), 7)}   1 row each; ${fmtInt(statement.batched)} with ${statement.batchRows} rows each; plain INSERT ${fmtInt(statement.plainInsert)}`,
      `submits @64 / statement        ${pad(((l64.rps / statement.oneRow) * 100).toFixed(1) + '%', 7)}   of 1 row each; ${((l64.rps / statement.batched) * 100).toFixed(1)}% of ${statement.batchRows} rows each`,
      `status reads/s @64             ${pad(fmtInt(readRps), 7)}   p50 ${pad(fmtMs(reads.p50Ms), 5)} ms  p99 ${pad(fmtMs(reads.p99Ms), 5)} ms`,
      `dispatch latency               ${pad('', 7)}   p50 ${pad(fmtMs(dispatch.p50Ms), 5)} ms  p99 ${pad(fmtMs(dispatch.p99Ms), 5)} ms`,
      ...tracing.modes.map(
        (m) => `submits/s @${TRACE_CONNECTIONS} traces ${pad(m.name, 5)}     ${pad(fmtInt(median(m.rps)), 7)}   ${pct(median(perRound(m.rps, tracing.modes[0]!.rps)))} of off (median over ${TRACE_RUNS} rounds)`,
      ),
      `failed requests / lost jobs    ${pad(totalFailures, 7)}`,
      '',
      `${verdict(ratio >= TARGETS.rawRatioAt64 && l64.p99Ms <= TARGETS.p99At64Ms)}  submits @64 ≥ ${TARGETS.rawRatioAt64 * 100}% of raw inserts and p99 ≤ ${TARGETS.p99At64Ms} ms  (${(ratio * 100).toFixed(1)}%, p99 ${fmtMs(l64.p99Ms)} ms)`,
      `${verdict(l1.rps >= TARGETS.submitsAt1)}  submits @1 ≥ ${fmtInt(TARGETS.submitsAt1)}/s  (${fmtInt(l1.rps)}/s)`,
      `${verdict(readRps >= TARGETS.readsAt64)}  status reads @64 ≥ ${fmtInt(TARGETS.readsAt64)}/s  (${fmtInt(readRps)}/s)`,
      `${verdict(dispatch.p50Ms <= TARGETS.dispatchP50Ms)}  dispatch p50 ≤ ${TARGETS.dispatchP50Ms} ms  (${fmtMs(dispatch.p50Ms)} ms)`,
      `${verdict(tracedRatio >= TARGETS.tracedRatioAt10)}  submits with 10 % of traces sampled ≥ ${TARGETS.tracedRatioAt10 * 100}% of untraced  (${(tracedRatio * 100).toFixed(1)}%)`,
      `${verdict(tracedCapacity >= TARGETS.tracedRatioAt10)}  capacity with 10 % of traces sampled (CPU per submit at a fixed rate) ≥ ${TARGETS.tracedRatioAt10 * 100}% of untraced  (${(tracedCapacity * 100).toFixed(1)}%)`,
      `${verdict(totalFailures === 0)}  zero failed requests  (${totalFailures})`,
      '',
      ...historySummary(history),
    ];
    // A busy neighbour (a test suite, a build) on a 2-core machine lowers every number; say so.
    const maxOther = Math.max(...[raw.cpu, ...levels.map((l) => l.cpu), readCpu].map((u) => u?.other ?? 0));
    if (maxOther > 0.25) {
      lines.push(`WARNING: other processes used up to ${maxOther.toFixed(2)} cores during a phase; rerun on a quiet machine`);
    }
    console.log(`\n──── summary ────\n${lines.join('\n')}`);
    return totalFailures === 0 ? 0 : 1;
  } finally {
    await teardown();
  }

}

runBench(main);
