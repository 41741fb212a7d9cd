// `npm run bench:gpu`: seconds per image of the whole pipeline (text encoder, UNet steps, VAE,
// PNG) at batch 1 and 4, DDIM, beside onnxruntime's own Stable Diffusion 1.5 figure for the same
// card (issue 16, criterion 4; docs/architecture.md, decision 21).
//
// On CUDA: the full-size float16 SD 1.5 model, built once by the sd15-model generator into a
// cache folder outside the repository (reused after), 512², 50 steps, GPU memory peak by polling
// nvidia-smi. On the CPU: 256², a few steps, a reduced-width SD 1.5 model or the tiny one, with a
// note that those numbers are not the target; that mode is what the tests run.
//   npm run bench:gpu [-- --provider auto|cuda|cpu] [--model-dir DIR] [--model sd15|tiny]
//                     [--width W] [--size N] [--steps N] [--batches 1,4] [--runs N]
// BENCH_GPU_MODEL_DIR sets the folder too. A folder holding model_index.json is used as it is.
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { LIMITS } from '../../src/core/request.ts';
import { cudaProviderInstalled, loadModel, onnxruntimeVersion, type ExecutionProvider } from '../../src/runner/pipeline/model.ts';
import { writeTinyModel } from '../../src/runner/pipeline/tiny-model.ts';
import { writeSd15Model } from '../../src/runner/pipeline/sd15-model.ts';
import { txt2img, type Txt2ImgResult } from '../../src/runner/pipeline/txt2img.ts';
import { ddimParams } from './params.ts';

/** onnxruntime's published SD 1.5 figures (512², 50 steps, batch 1), matched by the card's name. */
export const REFERENCES = [
  { match: /RTX 3060/i, card: 'RTX 3060', secondsPerImage: 5.0, source: "onnxruntime's published SD 1.5 figure" },
  { match: /H100/i, card: 'H100', secondsPerImage: 0.57, source: "onnxruntime's published SD 1.5 figure, with IO binding" },
] as const;
/** Within 10 % of onnxruntime's own figure on the same card. */
export const TARGET_RATIO = 1.1;

export interface GpuBenchOptions {
  provider: ExecutionProvider;
  /** The model folder; built there when it holds no model. */
  modelDir?: string;
  /** What to build when the folder is empty: SD 1.5's layers (sd15-model.ts) or the tiny test model. */
  model?: 'sd15' | 'tiny';
  /** SD 1.5's channel-width multiplier (1: the real size). */
  width?: number;
  size?: number;
  steps?: number;
  batches?: number[];
  /** Timed generations per batch size, after one warm-up (cuDNN's algorithm search runs there). */
  runs?: number;
}

/** Milliseconds per image, the median over the timed runs. */
export interface BatchResult {
  batch: number;
  secondsPerImage: number;
  textEncoderMs: number;
  unetStepsMs: number;
  vaeMs: number;
  pngMs: number;
  /** One UNet step (guidance and scheduler included) for the whole batch. */
  stepMs: number;
}

export interface GpuBenchReport {
  provider: 'cuda' | 'cpu';
  device: string;
  modelDir: string;
  modelKind: string;
  size: number;
  steps: number;
  runs: number;
  batches: BatchResult[];
  /** MiB used on the GPU: before the model loaded and at the peak; null without nvidia-smi. */
  gpuMemory: { beforeMiB: number; peakMiB: number } | null;
  reference: (typeof REFERENCES)[number] | null;
}

/** The cache folder for the full-size model: outside the repository, kept between runs. */
export function defaultModelDir(): string {
  const cache = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(cache, 'itemgen', 'sd15-fp16');
}

/** The reference for a card, by its name as nvidia-smi gives it (null for any other card). */
export function referenceFor(gpuName: string | null): (typeof REFERENCES)[number] | null {
  return gpuName ? (REFERENCES.find((r) => r.match.test(gpuName)) ?? null) : null;
}

const exists = (file: string) => fs.stat(file).then(() => true, () => false);

/** Uses the folder's model, or builds one there; says which. */
async function ensureModel(dir: string, kind: 'sd15' | 'tiny', fp16: boolean, width: number): Promise<string> {
  if (await exists(path.join(dir, 'model_index.json'))) return `reused ${dir}`;
  if (kind === 'sd15') {
    await writeSd15Model(dir, { fp16, width, seed: 1 });
    return `SD 1.5 layers, width ×${width}${fp16 ? ', float16' : ''}, random weights, built now`;
  }
  await writeTinyModel(dir, { seed: 1, fp16 });
  return `tiny test model${fp16 ? ', float16' : ''}, built now`;
}

/** Runs a command and resolves to its output, or null when it cannot run (no nvidia-smi). */
function output(command: string, args: string[]): Promise<string | null> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    let text = '';
    child.stdout.on('data', (chunk: Buffer) => (text += chunk.toString()));
    child.on('error', () => resolve(null));
    child.on('close', (code) => resolve(code === 0 ? text : null));
  });
}

export async function gpuName(): Promise<string | null> {
  const text = await output('nvidia-smi', ['--query-gpu=name', '--format=csv,noheader', '--id=0']);
  return text?.trim().split('\n')[0]?.trim() || null;
}

/**
 * Samples the GPU's used memory every 100 ms with nvidia-smi's own loop. `ready` settles at the
 * first sample (or when nvidia-smi is absent or gone); stop() gives the first sample and the peak,
 * or null without nvidia-smi. The figure is the whole card's, other processes included.
 */
export function pollGpuMemory(): { ready: Promise<void>; stop(): Promise<{ beforeMiB: number; peakMiB: number } | null> } {
  const child = spawn('nvidia-smi', ['--query-gpu=memory.used', '--format=csv,noheader,nounits', '--id=0', '-lms', '100'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const samples: number[] = [];
  let failed = false;
  let rest = '';
  let sampled: () => void = () => {};
  const ready = new Promise<void>((resolve) => (sampled = resolve));
  child.stdout.on('data', (chunk: Buffer) => {
    const lines = (rest + chunk.toString()).split('\n');
    rest = lines.pop() ?? '';
    for (const line of lines) {
      const value = Number(line.trim());
      if (line.trim() && Number.isFinite(value)) samples.push(value);
    }
    if (samples.length > 0) sampled();
  });
  const closed = new Promise<void>((resolve) => {
    child.on('error', () => {
      failed = true;
      resolve();
    });
    child.on('close', () => resolve());
  });
  void closed.then(sampled);
  return {
    ready,
    async stop() {
      if (!failed) child.kill();
      await closed;
      if (failed || samples.length === 0) return null;
      return { beforeMiB: samples[0]!, peakMiB: Math.max(...samples) };
    },
  };
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

export async function runGpuBench(options: GpuBenchOptions): Promise<GpuBenchReport> {
  const cuda = options.provider === 'cuda' || (options.provider === 'auto' && cudaProviderInstalled());
  const size = options.size ?? (cuda ? 512 : 256);
  const steps = options.steps ?? (cuda ? 50 : 4);
  const batches = options.batches ?? [1, 4];
  const runs = options.runs ?? (cuda ? 3 : 1);
  const kind = options.model ?? 'sd15';
  const width = options.width ?? (cuda ? 1 : 0.125);
  const temporary = options.modelDir === undefined && !cuda ? await fs.mkdtemp(path.join(os.tmpdir(), 'itemgen-bench-gpu-')) : null;
  const modelDir = options.modelDir ?? temporary ?? defaultModelDir();
  try {
    const modelKind = await ensureModel(modelDir, kind, cuda, width);
    const name = cuda ? await gpuName() : null;
    const memory = cuda ? pollGpuMemory() : null;
    await memory?.ready;
    const model = await loadModel(modelDir, { executionProvider: options.provider });
    if (cuda && model.executionProvider !== 'cuda') {
      await memory?.stop();
      // `auto` fell back: the full-size model on the CPU would take hours.
      throw new Error('CUDA was expected (its provider library is installed) but the model runs on the CPU: see the log, or pass --provider cpu');
    }
    const params = ddimParams('a glowing sword, game item icon', size, steps);
    const results: BatchResult[] = [];
    for (const batch of batches) {
      const p = { ...params, num_images: batch };
      await txt2img(model, p);
      const timed: Txt2ImgResult['timingsMs'][] = [];
      for (let r = 0; r < runs; r++) timed.push((await txt2img(model, { ...p, seed: 2 + r })).timingsMs);
      const per = (pick: (t: Txt2ImgResult['timingsMs']) => number) => median(timed.map(pick)) / batch;
      results.push({
        batch,
        secondsPerImage: per((t) => t.total) / 1000,
        textEncoderMs: per((t) => t.textEncoder),
        unetStepsMs: per((t) => t.denoise),
        vaeMs: per((t) => t.decode),
        pngMs: per((t) => t.png),
        stepMs: median(timed.map((t) => t.denoise)) / steps,
      });
    }
    const gpuMemory = (await memory?.stop()) ?? null;
    return {
      provider: model.executionProvider,
      device: model.executionProvider === 'cuda' ? (name ?? 'GPU (nvidia-smi absent)') : `CPU (${os.cpus()[0]?.model.trim() ?? 'unknown'})`,
      modelDir,
      modelKind: `${modelKind}; UNet ${model.unet.floatType}, denoising on the ${model.unet.denoiser}`,
      size,
      steps,
      runs,
      batches: results,
      gpuMemory,
      reference: model.executionProvider === 'cuda' ? referenceFor(name) : null,
    };
  } finally {
    if (temporary) await fs.rm(temporary, { recursive: true, force: true });
  }
}

const ms = (v: number) => v.toFixed(v < 10 ? 2 : 1).padStart(9);

export function formatReport(r: GpuBenchReport): string {
  const lines = [
    `gpu bench — ${r.device}, ${r.provider}, onnxruntime-node ${onnxruntimeVersion()}, ${r.size}×${r.size}, ${r.steps} steps, DDIM, guidance 7.5, median of ${r.runs} run(s) after a warm-up`,
    `model      ${r.modelKind}`,
  ];
  if (r.provider === 'cpu') {
    lines.push('note       CPU run: these numbers are not the target, which is onnxruntime\'s own figure on the same GPU (run this on a GPU node)');
  }
  lines.push('', 'batch  s/image    text enc    UNet steps   VAE         PNG   (ms per image)  step (ms, whole batch)');
  for (const b of r.batches) {
    lines.push(`${String(b.batch).padEnd(5)}  ${b.secondsPerImage.toFixed(3).padStart(7)}  ${ms(b.textEncoderMs)}  ${ms(b.unetStepsMs)}  ${ms(b.vaeMs)}  ${ms(b.pngMs)}  ${ms(b.stepMs)}`);
  }
  lines.push('', `GPU memory peak   ${r.gpuMemory ? `${r.gpuMemory.peakMiB} MiB (${r.gpuMemory.beforeMiB} MiB before the model loaded; nvidia-smi, whole card)` : 'n/a'}`);
  const single = r.batches.find((b) => b.batch === 1);
  if (r.reference && single) {
    const limit = r.reference.secondsPerImage * TARGET_RATIO;
    lines.push(`reference         ${r.reference.card} ${r.reference.secondsPerImage} s per image (${r.reference.source}, 512², 50 steps)`);
    const comparable = r.size === 512 && r.steps === 50;
    lines.push(
      comparable
        ? `${single.secondsPerImage <= limit ? 'PASS' : 'MISS'}  batch 1 within 10 % of onnxruntime's figure on this card: ${single.secondsPerImage.toFixed(3)} s ≤ ${limit.toFixed(3)} s`
        : `(no verdict: the reference is for 512², 50 steps)`,
    );
  }
  return lines.join('\n');
}

export function parseOptions(argv: string[]): GpuBenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      provider: { type: 'string', default: 'auto' },
      'model-dir': { type: 'string' },
      model: { type: 'string' },
      width: { type: 'string' },
      size: { type: 'string' },
      steps: { type: 'string' },
      batches: { type: 'string' },
      runs: { type: 'string' },
    },
  });
  const int = (name: string, v: string | undefined, min: number, max: number) => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer in [${min}, ${max}], got ${v}`);
    return n;
  };
  if (!['auto', 'cuda', 'cpu'].includes(values.provider)) throw new Error(`--provider must be auto, cuda or cpu, got ${values.provider}`);
  if (values.model !== undefined && values.model !== 'sd15' && values.model !== 'tiny') throw new Error(`--model must be sd15 or tiny, got ${values.model}`);
  const width = values.width === undefined ? undefined : Number(values.width);
  if (width !== undefined && !(width > 0 && width <= 1)) throw new Error(`--width must be in (0, 1], got ${values.width}`);
  // The API's own limits: a request the gateway would refuse is no figure of ours.
  const size = int('size', values.size, LIMITS.size.min, LIMITS.size.max);
  if (size !== undefined && size % LIMITS.size.multipleOf !== 0) throw new Error(`--size must be a multiple of ${LIMITS.size.multipleOf}, got ${size}`);
  return {
    provider: values.provider as ExecutionProvider,
    modelDir: values['model-dir'] ?? process.env.BENCH_GPU_MODEL_DIR,
    model: values.model as 'sd15' | 'tiny' | undefined,
    width,
    size,
    steps: int('steps', values.steps, LIMITS.steps.min, LIMITS.steps.max),
    batches: values.batches?.split(',').map((b) => int('batches', b, LIMITS.images.min, LIMITS.images.max)!),
    runs: int('runs', values.runs, 1, 20),
  };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  let options: GpuBenchOptions;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (err) {
    console.error(`bench:gpu: ${(err as Error).message}`);
    process.exit(2);
  }
  console.log(formatReport(await runGpuBench(options)));
}
