// `npm run chaos`: the chaos run of scripts/chaos/harness.ts with its defaults (300 jobs, 3 runners,
// 3 runner kills, 2 broker and 2 database cuts, a database partition, a gateway SIGTERM and a
// SIGKILL restart, 6 cancels, a 5-minute deadline) on the test services, then its numbers and invariants.
// Exits 0 when every invariant held, 1 when one did not or the deadline passed, 2 on a crash.
// Tuning: CHAOS_JOBS, CHAOS_RUNNERS, CHAOS_DEADLINE_S, CHAOS_CUT_MS, CHAOS_SEED, CHAOS_CANCELS,
// CHAOS_FAULTS (e.g. "runnerKill=3,brokerCut=2,dbCut=2,dbPartition=1,gatewayRestart=1,gatewayKill=1"),
// CHAOS_CUT_MODES (how the n-th cut of a link cuts, cycling: "drop,refuse", the default, or one),
// CHAOS_KEEP=1 (keep the temp folder: every process's log and the images).
import { DEFAULT_OPTIONS, formatReport, runChaos, type ChaosOptions, type FaultKind } from './harness.ts';

const env = process.env;
const num = (name: string, def: number) => {
  const v = env[name];
  if (v === undefined || v === '') return def;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number, got ${JSON.stringify(v)}`);
  return n;
};

const faults = { ...DEFAULT_OPTIONS.faults };
for (const part of (env.CHAOS_FAULTS ?? '').split(',').filter(Boolean)) {
  const [k, v] = part.split('=');
  if (!k || !(k in faults) || !/^\d+$/.test(v ?? '')) throw new Error(`CHAOS_FAULTS: bad entry ${JSON.stringify(part)} (kinds: ${Object.keys(faults).join(', ')})`);
  faults[k as FaultKind] = Number(v);
}

const cutModes = (env.CHAOS_CUT_MODES ?? DEFAULT_OPTIONS.cutModes.join(',')).split(',').map((m) => m.trim());
for (const m of cutModes) if (m !== 'drop' && m !== 'refuse') throw new Error(`CHAOS_CUT_MODES: ${JSON.stringify(m)} is neither drop nor refuse`);

const options: Partial<ChaosOptions> = {
  jobs: num('CHAOS_JOBS', DEFAULT_OPTIONS.jobs),
  runners: num('CHAOS_RUNNERS', DEFAULT_OPTIONS.runners),
  deadlineMs: num('CHAOS_DEADLINE_S', DEFAULT_OPTIONS.deadlineMs / 1000) * 1000,
  cutMs: num('CHAOS_CUT_MS', DEFAULT_OPTIONS.cutMs),
  cancels: num('CHAOS_CANCELS', DEFAULT_OPTIONS.cancels),
  seed: num('CHAOS_SEED', Date.now() % 1_000_000),
  faults,
  cutModes: cutModes as ChaosOptions['cutModes'],
  keepDir: env.CHAOS_KEEP === '1',
  log: (line) => process.stderr.write(`${line}\n`),
};

const abort = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => abort.abort());

try {
  process.stderr.write(`chaos: seed ${options.seed} (CHAOS_SEED=${options.seed} repeats the job parameters)\n`);
  const report = await runChaos({ ...options, signal: abort.signal });
  process.stdout.write(`${formatReport(report)}\n`);
  if (!report.ok && !options.keepDir) process.stdout.write('(CHAOS_KEEP=1 keeps every process log and the images for a closer look)\n');
  process.exit(report.ok ? 0 : 1);
} catch (err) {
  process.stderr.write(`chaos: ${(err as Error).stack ?? err}\n`);
  process.exit(2);
}
