// `npm run bench:e2e`: end-to-end figures on real PostgreSQL and RabbitMQ with the tiny model —
// jobs per second with 1 and 2 runners (each its own process running src/runner/main.ts), and the
// per-job overhead outside the pipeline: (finished_at − created_at) minus the pipeline's own time,
// measured in this process beforehand on the same model and parameters (median of 20 runs).
// Under the 1-runner batch's backlog it also reports the runner's share of `1000 / pipeline_ms`
// jobs/s (target ≥ 80 %, decision 19's pipelining) and the share of the runner's wall time its
// model sat idle: 1 − itemgen_runner_model_busy_seconds_total's growth over the batch / the time
// from the batch's first claim to its last finish. BENCH_PREFETCH sets RUNNER_PREFETCH (default 2).
//
// Order: pipeline median here; gateway; an unpipelined runner (RUNNER_PREFETCH 1), warm-up, batch,
// stopped; runner A; warm-up; sequential pass (one job at a time, no queueing: the overhead
// figure); batch with 1 runner; runner B; warm-up; batch with 2 runners.
// A scratch database, a per-run queue prefix and temp dirs, all removed at the end (also on Ctrl-C).
// Exits 1 when a job failed or did not finish in time; a missed target is reported, not fatal.
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { GenerationParams } from '../../src/core/request.ts';
import { loadModel } from '../../src/runner/pipeline/model.ts';
import { writeTinyModel } from '../../src/runner/pipeline/tiny-model.ts';
import { txt2img } from '../../src/runner/pipeline/txt2img.ts';
import { ADMIN_URL, AMQP_URL, createBenchKey, fmtMs, pad, percentile, removeQueues, runBench, scratchDatabase, spawnUntilReady, stopChild, teardownOnce, verdict } from './common.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const DB_NAME = 'itemgen_bench_e2e';
const PREFIX = `bench-e2e-${Date.now()}`;
const RUNNER_TOKEN = 'bench-e2e-runner-token-0123456789'.slice(0, 32);
const BATCH = Number(process.env.BENCH_BATCH ?? 60);
const SEQUENTIAL = Number(process.env.BENCH_SEQUENTIAL ?? 30);
const PIPELINE_RUNS = 20;
const WARMUP_JOBS = 4;
const JOB_DEADLINE_MS = 30_000;
const BATCH_DEADLINE_MS = 60_000;
const POLL_MS = 10;
const TARGET_OVERHEAD_P50_MS = 30;
/** One pipelined runner under a backlog: at least this share of 1000 / pipeline_ms jobs/s. */
const TARGET_PIPELINED_SHARE = 0.8;
const PREFETCH = Number(process.env.BENCH_PREFETCH ?? 2);

const BODY = { prompt: 'a glowing sword', num_inference_steps: 4, guidance_scale: 7.5, width: 256, height: 256 };

/** Starts a child (see spawnUntilReady), kept in `children` for the teardown. */
async function startChild(
  name: string,
  args: string[],
  env: Record<string, string>,
  ready: RegExp,
  forward: (line: string) => boolean,
): Promise<{ child: ChildProcess; match: string }> {
  const started = spawnUntilReady({ name, args, env, ready, forward });
  children.push(started.child);
  return { child: started.child, match: await started.ready };
}

const children: ChildProcess[] = [];
const isWarnOrError = (line: string) => !line.startsWith('{') || /"severity":"(WARNING|WARN|ERROR)"/.test(line);

interface View {
  id: string;
  status: string;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  error?: { code: string; message: string };
}

interface Timing {
  total: number; // finished − created
  toClaim: number; // started − created
  claimToFinish: number; // finished − started
  created: number;
  finished: number;
}

const timingOf = (v: View): Timing => {
  const created = Date.parse(v.created_at);
  const started = Date.parse(v.started_at!);
  const finished = Date.parse(v.finished_at!);
  return { total: finished - created, toClaim: started - created, claimToFinish: finished - started, created, finished };
};

async function main(): Promise<number> {
  const db = scratchDatabase(ADMIN_URL, DB_NAME);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'itemgen-bench-e2e-'));
  const modelDir = path.join(tmp, 'model');
  const dataDir = path.join(tmp, 'data');

  const teardown = teardownOnce(async () => {
    // Runners first (they talk to the gateway), then the gateway.
    await Promise.all(children.slice(1).map((c) => stopChild(c, 'SIGTERM', 5000)));
    if (children[0]) await stopChild(children[0], 'SIGTERM', 10_000);
    await removeQueues(AMQP_URL, PREFIX);
    await db.remove();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  try {
    // 1. The pipeline's own time, in this process, before anything else runs.
    await writeTinyModel(modelDir, { seed: 0 });
    const model = await loadModel(modelDir, { executionProvider: 'cpu' });
    const params: GenerationParams = {
      prompt: BODY.prompt,
      negative_prompt: '',
      num_inference_steps: BODY.num_inference_steps,
      guidance_scale: BODY.guidance_scale,
      seed: 1,
      width: BODY.width,
      height: BODY.height,
      scheduler: 'ddim',
      num_images: 1,
    };
    for (let i = 0; i < 3; i++) await txt2img(model, { ...params, seed: 100 + i }); // warm-up
    const pipeMs: number[] = [];
    for (let i = 0; i < PIPELINE_RUNS; i++) {
      const t0 = performance.now();
      await txt2img(model, { ...params, seed: i + 1 });
      pipeMs.push(performance.now() - t0);
    }
    const pipeline = percentile(pipeMs, 50);
    console.log(`itemgen e2e bench — ${os.cpus().length} CPUs, node ${process.version}, tiny model, 256×256, 4 steps, guidance 7.5, ddim, cpu`);
    console.log(`scratch database ${DB_NAME}, queue prefix ${PREFIX}, RUNNER_PREFETCH ${PREFETCH}\n`);
    console.log(
      `pipeline in-process (txt2img incl. PNG, ${PIPELINE_RUNS} runs): p50 ${fmtMs(pipeline)} ms · p99 ${fmtMs(percentile(pipeMs, 99))} ms · min ${fmtMs(Math.min(...pipeMs))} ms`,
    );

    // 2. Scratch database, key, gateway, first runner.
    await db.create();
    // Before the gateway (as bench:gateway does), so it starts with a key configured.
    const apiKey = await createBenchKey(db.url, 'bench-e2e');
    const auth = { authorization: `Bearer ${apiKey}` };
    const baseEnv = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? os.tmpdir(),
      AMQP_URL,
      AMQP_PREFIX: PREFIX,
      RUNNER_TOKEN,
      DATA_DIR: dataDir,
    };
    const gw = await startChild(
      'gateway',
      [path.join(HERE, 'gateway-server.ts')],
      // Rate limits off: the bench submits faster than a person would.
      { ...baseEnv, DATABASE_URL: db.url, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'warn', RATE_LIMIT_SUBMIT: 'off', RATE_LIMIT_REQUEST: 'off' },
      /^listening (\S+)/,
      (line) => !line.startsWith('listening'),
    );
    const baseUrl = gw.match;

    let runnerCount = 0;
    /** Starts a runner; resolves to its health server's URL (its /metrics). */
    const startRunnerProcess = async (prefetch = PREFETCH) => {
      const name = `runner${++runnerCount}`;
      const started = await startChild(
        name,
        ['src/runner/main.ts'],
        {
          ...baseEnv,
          GATEWAY_URL: baseUrl,
          MODEL_DIR: modelDir,
          EXECUTION_PROVIDER: 'cpu',
          RUNNER_HEALTH_HOST: '127.0.0.1',
          RUNNER_HEALTH_PORT: '0',
          RUNNER_ID: `${PREFIX}-${name}`,
          RUNNER_PREFETCH: String(prefetch),
          ...(process.env.BENCH_INTRA_OP_THREADS ? { INTRA_OP_THREADS: process.env.BENCH_INTRA_OP_THREADS } : {}),
          // info, to see "runner consuming"; only warnings and errors are shown.
          LOG_LEVEL: 'info',
        },
        /"message":"runner consuming".*"health":"([^"]+)"/,
        isWarnOrError,
      );
      return { child: started.child, healthUrl: started.match };
    };
    /** The runner's model busy time and its process's CPU time so far, in ms, from its /metrics. */
    const runnerTimes = async (healthUrl: string): Promise<{ busy: number; cpu: number }> => {
      const text = await (await fetch(`${healthUrl}/metrics`)).text();
      const read = (name: string) => {
        const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
        if (!m) throw new Error(`no ${name} in ${healthUrl}/metrics`);
        return Number(m[1]) * 1000;
      };
      return { busy: read('itemgen_runner_model_busy_seconds_total'), cpu: read('process_cpu_seconds_total') };
    };

    const submit = async (): Promise<string> => {
      const res = await fetch(`${baseUrl}/v1/generations`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify(BODY),
      });
      const text = await res.text();
      const id = res.headers.get('location')?.split('/').pop();
      if (res.status !== 202 || !id) throw new Error(`submit answered ${res.status}: ${text}`);
      return id;
    };
    const get = async (id: string): Promise<View> => {
      const res = await fetch(`${baseUrl}/v1/generations/${id}`, { headers: auth });
      if (res.status !== 200) throw new Error(`GET ${id} answered ${res.status}: ${await res.text()}`);
      return (await res.json()) as View;
    };
    const unfinishedCount = async (): Promise<number> => {
      let n = 0;
      for (const status of ['pending', 'processing']) {
        const res = await fetch(`${baseUrl}/v1/generations?status=${status}&limit=100`, { headers: auth });
        if (res.status !== 200) throw new Error(`list answered ${res.status}: ${await res.text()}`);
        n += ((await res.json()) as { data: View[] }).data.length;
      }
      return n;
    };
    const terminal = (v: View) => ['completed', 'failed', 'canceled'].includes(v.status);
    const waitFor = async (id: string): Promise<View> => {
      const deadline = performance.now() + JOB_DEADLINE_MS;
      while (performance.now() < deadline) {
        const v = await get(id);
        if (terminal(v)) return v;
        await sleep(POLL_MS);
      }
      throw new Error(`generation ${id} did not finish within ${JOB_DEADLINE_MS / 1000} s`);
    };
    const completedTimings = (views: View[]): Timing[] => {
      const bad = views.filter((v) => v.status !== 'completed');
      if (bad.length) {
        const codes = bad.map((v) => `${v.status}${v.error ? ` (${v.error.code}: ${v.error.message})` : ''}`);
        throw new Error(`${bad.length} generations did not complete: ${[...new Set(codes)].join('; ')}`);
      }
      return views.map(timingOf);
    };

    /** Submits `n` jobs as fast as one connection per job allows, waits for all, reads each back. */
    const runBatch = async (n: number) => {
      const t0 = performance.now();
      const ids = await Promise.all(Array.from({ length: n }, () => submit()));
      const submittedMs = performance.now() - t0;
      const deadline = t0 + BATCH_DEADLINE_MS;
      while ((await unfinishedCount()) > 0) {
        if (performance.now() > deadline) throw new Error(`batch of ${n} did not finish within ${BATCH_DEADLINE_MS / 1000} s`);
        await sleep(POLL_MS * 2);
      }
      const wallMs = performance.now() - t0;
      const timings = completedTimings(await Promise.all(ids.map(get)));
      const spanMs = Math.max(...timings.map((t) => t.finished)) - Math.min(...timings.map((t) => t.created));
      // The runners' busy stretch: the batch's first claim to its last finish.
      const workMs = Math.max(...timings.map((t) => t.finished)) - Math.min(...timings.map((t) => t.finished - t.claimToFinish));
      return { n, submittedMs, wallMs, spanMs, workMs, timings };
    };

    /** A backlog on one runner: its jobs/s, and its model's busy and its process's CPU time over the batch. */
    const backlogOn = async (healthUrl: string) => {
      const before = await runnerTimes(healthUrl);
      const batch = await runBatch(BATCH);
      const after = await runnerTimes(healthUrl);
      return { batch, jps: BATCH / (batch.spanMs / 1000), busy: after.busy - before.busy, cpu: after.cpu - before.cpu };
    };

    // The same backlog on an unpipelined runner first (one job at a time), the limit's other side in this run.
    const unpipelined = await startRunnerProcess(1);
    for (let i = 0; i < WARMUP_JOBS; i++) completedTimings([await waitFor(await submit())]);
    const batch0 = await backlogOn(unpipelined.healthUrl);
    await stopChild(unpipelined.child, 'SIGTERM', 10_000);

    const runnerA = (await startRunnerProcess()).healthUrl;
    for (let i = 0; i < WARMUP_JOBS; i++) completedTimings([await waitFor(await submit())]);

    // 3. Sequential pass: no queueing, so finished − created is pipeline + overhead.
    const seqViews: View[] = [];
    for (let i = 0; i < SEQUENTIAL; i++) seqViews.push(await waitFor(await submit()));
    const seq = completedTimings(seqViews);
    const overhead = seq.map((t) => t.total - pipeline);

    // 4. Batches with 1, then 2 runners.
    const backlog1 = await backlogOn(runnerA);
    const batch1 = backlog1.batch;
    await startRunnerProcess();
    // Warm the second runner's sessions: a few jobs at once, so both runners get some.
    completedTimings(await Promise.all(Array.from({ length: WARMUP_JOBS }, async () => waitFor(await submit()))));
    const batch2 = await runBatch(BATCH);

    // Report.
    const row = (label: string, values: number[]) =>
      `  ${label.padEnd(36)} p50 ${pad(fmtMs(percentile(values, 50)), 7)} ms   p99 ${pad(fmtMs(percentile(values, 99)), 7)} ms`;
    console.log(`\nsequential pass (${SEQUENTIAL} jobs, one at a time, 1 runner; GET /v1/generations/{id} timestamps, ms precision)`);
    console.log(row('submit → finished', seq.map((t) => t.total)));
    console.log(row('submit → claim (created→started)', seq.map((t) => t.toClaim)));
    console.log(row('claim → finished (started→finished)', seq.map((t) => t.claimToFinish)));
    console.log(row('claim → finished − pipeline p50', seq.map((t) => t.claimToFinish - pipeline)));
    console.log(row('overhead (total − pipeline p50)', overhead));

    for (const [runners, b] of [
      [1, batch1],
      [2, batch2],
    ] as const) {
      console.log(`\nbatch of ${b.n} submitted at once, ${runners} runner${runners > 1 ? 's' : ''}`);
      console.log(
        `  ${(b.n / (b.spanMs / 1000)).toFixed(1)} jobs/s (first created → last finished ${fmtMs(b.spanMs)} ms; ` +
          `wall incl. polling ${fmtMs(b.wallMs)} ms; submits took ${fmtMs(b.submittedMs)} ms)`,
      );
      console.log(row('submit → claim (incl. queueing)', b.timings.map((t) => t.toClaim)));
      console.log(row('claim → finished', b.timings.map((t) => t.claimToFinish)));
      console.log(row('claim → finished − pipeline p50', b.timings.map((t) => t.claimToFinish - pipeline)));
    }

    const jps1 = backlog1.jps;
    const jps2 = BATCH / (batch2.spanMs / 1000);
    const p50 = percentile(overhead, 50);
    const ideal = 1000 / pipeline;
    const share = jps1 / ideal;
    const idleOf = (b: typeof backlog1) => 1 - b.busy / b.batch.workMs;
    console.log(`\n──── summary ────`);
    console.log(`pipeline p50 (in-process)        ${pad(fmtMs(pipeline), 7)} ms`);
    console.log(`jobs/s, 1 runner                 ${pad(jps1.toFixed(1), 7)}   (ideal 1000/pipeline = ${ideal.toFixed(1)}; ${(share * 100).toFixed(0)} % of it, RUNNER_PREFETCH ${PREFETCH})`);
    console.log(
      `model idle, 1 runner             ${pad((idleOf(backlog1) * 100).toFixed(1), 7)} %  of the runner's wall time under the backlog ` +
        `(model busy ${fmtMs(backlog1.busy)} ms of ${fmtMs(batch1.workMs)} ms, first claim → last finish; ${fmtMs(backlog1.busy / BATCH)} ms a job)`,
    );
    console.log(`runner CPU per job, 1 runner     ${pad(fmtMs(backlog1.cpu / BATCH), 7)} ms  (all its threads: onnxruntime's, the event loop's)`);
    console.log(
      `  the same, RUNNER_PREFETCH 1     ${pad(batch0.jps.toFixed(1), 7)} jobs/s (${((batch0.jps / ideal) * 100).toFixed(0)} %), model idle ${(idleOf(batch0) * 100).toFixed(1)} %, ` +
        `${fmtMs(batch0.busy / BATCH)} ms model and ${fmtMs(batch0.cpu / BATCH)} ms CPU a job`,
    );
    console.log(`jobs/s, 2 runners                ${pad(jps2.toFixed(1), 7)}   (×${(jps2 / jps1).toFixed(2)} of 1 runner, ${os.cpus().length} CPUs)`);
    console.log(`overhead per job (sequential)    p50 ${pad(fmtMs(p50), 6)} ms   p99 ${pad(fmtMs(percentile(overhead, 99)), 6)} ms`);
    console.log(`\n${verdict(p50 <= TARGET_OVERHEAD_P50_MS)}  overhead p50 ≤ ${TARGET_OVERHEAD_P50_MS} ms  (${fmtMs(p50)} ms)`);
    console.log(`${verdict(share >= TARGET_PIPELINED_SHARE)}  1 runner ≥ ${TARGET_PIPELINED_SHARE * 100} % of 1000 / pipeline_ms jobs/s under a backlog  (${(share * 100).toFixed(0)} %: ${jps1.toFixed(1)} of ${ideal.toFixed(1)})`);
    return 0;
  } finally {
    await teardown();
  }

}

runBench(main);
