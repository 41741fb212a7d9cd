// `npm run bench:sd15 -- <dir> [--runs N] [--steps N] [--size PX]`: the pipeline on a model of
// Stable Diffusion 1.5's size on the CPU (issue 16) — the generated one (sd15-model.ts), written
// to <dir> first when it holds no model (4.1 GB in fp32; keep it out of the repository), or any
// model folder. It prints the model hash's time without its digest cache and with it, then runs N
// starts, each a process of its own (sd15-run.ts): load time, resident memory after loading and at
// peak, seconds per UNet step at PX² (guidance on, so the UNet runs on a batch of two), and the
// share of time the pipeline spends outside onnxruntime, per step (bench:pipeline's figure, on
// this model rather than the tiny one) and over the whole generation, and whether every output of
// onnxruntime was finite. Repeated figures are given
// as min / median / max. It uses several GB of memory: wrap it in `flock /tmp/itemgen-bench.lock`.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { hashModelFiles } from '../../src/runner/pipeline/model-hash.ts';
import { sd15ParameterCounts, writeSd15Model } from '../../src/runner/pipeline/sd15-model.ts';
import { verdict } from './common.ts';

/** bench:pipeline's target for the work outside onnxruntime, as a share of step time. */
const OUTSIDE_SHARE_TARGET = 0.05;
const GiB = 2 ** 30;

const usage = 'usage: npm run bench:sd15 -- <dir> [--runs N] [--steps N] [--size PX]';
const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { runs: { type: 'string', default: '3' }, steps: { type: 'string', default: '3' }, size: { type: 'string', default: '256' } },
});
const [dir] = positionals;
const [runs, steps, size] = [Number(values.runs), Number(values.steps), Number(values.size)];
if (dir === undefined || positionals.length > 1 || !(runs >= 1) || !(steps >= 1) || !(size >= 64 && size % 64 === 0)) {
  console.error(usage);
  process.exit(2);
}

interface RunFigures {
  loadMs: number;
  hashMs: number;
  hashCached: boolean;
  rssAfterLoadGiB: number;
  peakRssGiB: number;
  totalMs: number;
  insideMs: number;
  stepMs: number;
  unetStepMs: number;
  textEncoderMs: number;
  decodeMs: number;
  pngMs: number;
  /** Every output of every onnxruntime run (text encoder, each UNet step, VAE) was finite. */
  finite: boolean;
}

const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
const mmm = (xs: number[], digits: number, unit = '') => {
  const s = sorted(xs);
  const f = (v: number) => `${v.toFixed(digits)}${unit}`;
  return s.length === 1 ? f(s[0]!) : `${f(s[0]!)} / ${f(s[Math.floor((s.length - 1) / 2)]!)} / ${f(s.at(-1)!)}`;
};
const median = (xs: number[]) => sorted(xs)[Math.floor((xs.length - 1) / 2)]!;

async function folderBytes(root: string): Promise<number> {
  let total = 0;
  for (const entry of await fs.readdir(root, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += (await fs.stat(path.join(entry.parentPath, entry.name))).size;
  }
  return total;
}

const hasModel = await fs.stat(path.join(dir, 'model_index.json')).then(
  () => true,
  () => false,
);
if (!hasModel) {
  const counts = sd15ParameterCounts(1);
  console.log(`writing the generated SD 1.5 model (fp32, ${((counts.textEncoder + counts.unet + counts.vaeDecoder) / 1e6).toFixed(0)} M parameters) to ${dir} …`);
  const started = performance.now();
  await writeSd15Model(dir, { seed: 0 });
  console.log(`written in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}
const bytes = await folderBytes(dir);
console.log(`sd15 bench — ${dir} (${(bytes / 1e9).toFixed(2)} GB), CPU, ${os.cpus().length} cores, ${size}×${size}, ${steps} DDIM steps, guidance 7.5, ${runs} starts`);

// The hash without its cache reads every weight (from the page cache where the files are in it:
// this bench does not drop the machine's caches); with it, the folder is only listed and stat'ed.
const scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'itemgen-bench-sd15-'));
const uncached: number[] = [];
const cached: number[] = [];
try {
  for (let i = 0; i < runs; i++) {
    const cacheFile = path.join(scratch, `hash-${i}.json`);
    let t = performance.now();
    const cold = await hashModelFiles(dir, { cacheFile });
    uncached.push(performance.now() - t);
    t = performance.now();
    const warm = await hashModelFiles(dir, { cacheFile });
    cached.push(performance.now() - t);
    if (cold.cached || !warm.cached || warm.hash !== cold.hash) throw new Error('hash cache did not behave: ' + JSON.stringify({ cold, warm }));
  }
} finally {
  await fs.rm(scratch, { recursive: true, force: true });
}
// The runs below start as a runner does, with the folder's own cache (written here if it is not yet).
await hashModelFiles(dir);

const figures: RunFigures[] = [];
for (let i = 0; i < runs; i++) {
  const out = execFileSync(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, 'sd15-run.ts'), dir, String(size), String(steps)], {
    encoding: 'utf8',
    env: { ...process.env, MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX ?? '2' },
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 16 * 1024 * 1024,
  });
  const run = JSON.parse(out.trim().split('\n').at(-1)!) as RunFigures;
  figures.push(run);
  console.log(`  start ${i + 1}: load ${(run.loadMs / 1000).toFixed(1)} s, ${(run.unetStepMs / 1000).toFixed(2)} s per UNet step, generation ${(run.totalMs / 1000).toFixed(1)} s, peak ${run.peakRssGiB.toFixed(2)} GiB`);
}

const pick = (key: keyof RunFigures) => figures.map((f) => f[key] as number);
const stepOutside = figures.map((f) => (f.stepMs - f.unetStepMs) / f.stepMs);
const wholeOutside = figures.map((f) => (f.totalMs - f.insideMs) / f.totalMs);
const row = (label: string, value: string) => `${label.padEnd(38)}${value}`;
console.log(
  [
    '',
    row('', 'min / median / max'),
    row('hash, no digest cache', `${mmm(uncached.map((ms) => ms / 1000), 2, ' s')}  (${mmm(uncached.map((ms) => bytes / 1e9 / (ms / 1000)), 2, ' GB/s')})`),
    row('hash, from the digest cache', mmm(cached, 2, ' ms')),
    row('load (sessions; hash from cache)', `${mmm(pick('loadMs').map((ms) => ms / 1000), 1, ' s')}   (of which the hash ${mmm(pick('hashMs'), 0, ' ms')}, ${figures.every((f) => f.hashCached) ? 'cached' : 'NOT all cached'})`),
    row('resident memory after load', mmm(pick('rssAfterLoadGiB'), 2, ' GiB')),
    row('resident memory at peak', mmm(pick('peakRssGiB'), 2, ' GiB')),
    row(`UNet step at ${size}² (batch 2)`, `${mmm(pick('unetStepMs').map((ms) => ms / 1000), 2, ' s')}  (inside onnxruntime)`),
    row('denoising step', mmm(pick('stepMs').map((ms) => ms / 1000), 2, ' s')),
    row('text encoder / VAE decode / PNG', `${mmm(pick('textEncoderMs'), 0, ' ms')} | ${mmm(pick('decodeMs').map((ms) => ms / 1000), 1, ' s')} | ${mmm(pick('pngMs'), 1, ' ms')}`),
    row('outside onnxruntime, per step', mmm(stepOutside.map((s) => s * 100), 3, ' %')),
    row('outside onnxruntime, whole generation', `${mmm(wholeOutside.map((s) => s * 100), 3, ' %')}  (${mmm(figures.map((f) => f.totalMs - f.insideMs), 1, ' ms')})`),
    '',
  ].join('\n'),
);
console.log(`${verdict(figures.every((f) => f.finite))}  every onnxruntime output finite (text encoder, each UNet step, VAE decoder; every start)
${verdict(median(stepOutside) <= OUTSIDE_SHARE_TARGET)}  work outside onnxruntime ≤ ${OUTSIDE_SHARE_TARGET * 100} % of step time (median, on this model)
${verdict(median(cached) < median(uncached))}  the digest cache makes the hash faster than reading the weights (same run)`);
