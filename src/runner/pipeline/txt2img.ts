// Text to image (after diffusers' StableDiffusionPipeline): prompt template, text encoding,
// classifier-free guidance, the scheduler loop, VAE decoding and PNG with parameters. It composes
// the model and a scheduler and never knows which scheduler it runs.
import type { GenerationParams } from '../../core/request.ts';
import type { Model } from './model.ts';
import { onnxruntimeVersion } from './model.ts';
import { encodePng } from './png.ts';
import { createGenerator } from './rng.ts';
import { kernels } from './simd.ts';
import { createScheduler } from './schedulers/index.ts';
import type { Scheduler, SchedulerName } from './schedulers/types.ts';
import { fromHalf, halfBits, halfTensor, toHalf } from './tensors.ts';
import ort from 'onnxruntime-node';

export interface Txt2ImgOptions {
  /** Called after each denoising step with (step done, total steps). */
  onStep?: (step: number, total: number) => void;
  /** Aborting stops the generation before its next step. */
  signal?: AbortSignal;
  /**
   * Also put the timings in the PNG manifest. Off by default: they differ run to run, and the same
   * request, seed and execution provider must give the same bytes (docs/architecture.md, decision 7).
   * They are always in the result.
   */
  timingsInPng?: boolean;
}

export interface GeneratedImage {
  png: Buffer;
  width: number;
  height: number;
}

export interface Txt2ImgResult {
  images: GeneratedImage[];
  /** Prompt and negative prompt as sent to the text encoder (template applied). */
  prompt: string;
  negativePrompt: string;
  /** Where the time went; `denoise` includes `unet` (inside onnxruntime) and `scheduler` (its steps). */
  timingsMs: { textEncoder: number; denoise: number; unet: number; scheduler: number; decode: number; png: number; total: number };
}

export class GenerationAbortedError extends Error {
  override name = 'GenerationAbortedError';
  constructor() {
    super('generation canceled');
  }
}

/** Names the infotext gives the samplers (the widely used A1111 spelling). */
const SAMPLER_LABEL: Record<SchedulerName, string> = {
  ddim: 'DDIM',
  pndm: 'PLMS',
  euler: 'Euler',
  euler_a: 'Euler a',
  dpmpp_2m: 'DPM++ 2M',
  lcm: 'LCM',
};

const now = () => performance.now();

/**
 * Schedulers are kept per model and reused (setTimesteps resets them): V8 keeps optimized code per
 * closure, so a fresh scheduler per generation would run its 16k-element step loop cold every
 * time (about 4× slower on the tiny model).
 */
const idleSchedulers = new WeakMap<Model, Map<SchedulerName, Scheduler[]>>();

function acquireScheduler(model: Model, name: SchedulerName): Scheduler {
  return idleSchedulers.get(model)?.get(name)?.pop() ?? createScheduler(name, model.schedulerConfig);
}

function releaseScheduler(model: Model, name: SchedulerName, scheduler: Scheduler): void {
  let byName = idleSchedulers.get(model);
  if (!byName) idleSchedulers.set(model, (byName = new Map()));
  const idle = byName.get(name) ?? [];
  byName.set(name, idle);
  idle.push(scheduler);
}

function floatTensor(data: Float32Array, dims: number[], type: 'float32' | 'float16'): ort.Tensor {
  return type === 'float16' ? halfTensor(toHalf(data), dims) : new ort.Tensor('float32', data, dims);
}

function readFloats(tensor: ort.Tensor): Float32Array {
  if (tensor.type === 'float16') return fromHalf(halfBits(tensor.data));
  if (tensor.type === 'float32') return tensor.data as Float32Array;
  throw new Error(`unexpected output type ${tensor.type}`);
}

/** Runs `session` on batch slices when the graph's batch is fixed (e.g. 1), else in one call. */
async function runBatched(
  session: ort.InferenceSession,
  fixedBatch: number | null,
  batch: number,
  feeds: (start: number, count: number) => Record<string, ort.Tensor>,
  output: string,
): Promise<Float32Array> {
  const step = fixedBatch ?? batch;
  if (batch % step !== 0) throw new Error(`batch ${batch} is not a multiple of the model's fixed batch ${step}`);
  const parts: Float32Array[] = [];
  for (let start = 0; start < batch; start += step) {
    const result = await session.run(feeds(start, step));
    parts.push(readFloats(result[output]!));
  }
  if (parts.length === 1) return parts[0]!;
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

function applyPrefix(prefix: string, prompt: string): string {
  return prefix && !prompt.toLowerCase().startsWith(prefix.trim().toLowerCase()) ? prefix + prompt : prompt;
}

export async function txt2img(model: Model, params: GenerationParams, options: Txt2ImgOptions = {}): Promise<Txt2ImgResult> {
  const started = now();
  const { signal, onStep } = options;
  const n = params.num_images;
  const guided = params.guidance_scale > 1;
  const prompt = applyPrefix(model.settings.promptPrefix, params.prompt);
  const negativePrompt = params.negative_prompt || model.settings.defaultNegativePrompt;
  const latentH = params.height / 8;
  const latentW = params.width / 8;
  const perImage = 4 * latentH * latentW;

  // Text embeddings: [uncond × n, cond × n] when guided (diffusers' order), else [cond × n].
  const t0 = now();
  const texts = guided ? [negativePrompt, prompt] : [prompt];
  const ids = texts.map((t) => model.tokenizer.encode(t));
  const seqLen = ids[0]!.length;
  const te = model.textEncoder;
  const idTensor = (rows: number[][]) => {
    const flat = rows.flat();
    return te.inputType === 'int64'
      ? new ort.Tensor('int64', BigInt64Array.from(flat, (v) => BigInt(v)), [rows.length, seqLen])
      : new ort.Tensor('int32', Int32Array.from(flat), [rows.length, seqLen]);
  };
  const embedded = await runBatched(te.session, te.fixedBatch, ids.length, (s, c) => ({ [te.input]: idTensor(ids.slice(s, s + c)) }), te.output);
  const hiddenSize = embedded.length / ids.length / seqLen;
  const perText = seqLen * hiddenSize;
  const batch = texts.length * n;
  const hidden = new Float32Array(batch * perText);
  for (let t = 0; t < texts.length; t++) {
    for (let i = 0; i < n; i++) hidden.set(embedded.subarray(t * perText, (t + 1) * perText), (t * n + i) * perText);
  }
  const textMs = now() - t0;

  // Initial noise from the seed, exactly as torch.randn on a CPU generator would draw it.
  const generator = createGenerator(params.seed);
  const scheduler = acquireScheduler(model, params.scheduler);
  try {
    return await denoiseAndDecode();
  } finally {
    releaseScheduler(model, params.scheduler, scheduler);
  }

  async function denoiseAndDecode(): Promise<Txt2ImgResult> {
    scheduler.setTimesteps(params.num_inference_steps);

    let latents = generator.randn(n * perImage);
    if (scheduler.initNoiseSigma !== 1) latents = latents.map((v) => v * scheduler.initNoiseSigma);

    const u = model.unet;
    const unetBatch = u.fixedBatch ?? batch;
    const hiddenTensorFor = (start: number, count: number) =>
      floatTensor(hidden.subarray(start * perText, (start + count) * perText), [count, seqLen, hiddenSize], u.floatType);
    // Encoder states do not change during the loop: convert them once per batch slice.
    const hiddenTensors = new Map<number, ort.Tensor>();
    for (let s = 0; s < batch; s += unetBatch) hiddenTensors.set(s, hiddenTensorFor(s, Math.min(unetBatch, batch - s)));

    const timestepTensor = (t: number, count: number): ort.Tensor => {
      const dims = u.timestepRank === 0 ? [] : [count];
      const size = u.timestepRank === 0 ? 1 : count;
      switch (u.timestepType) {
        case 'int64':
          return new ort.Tensor('int64', new BigInt64Array(size).fill(BigInt(Math.round(t))), dims);
        case 'int32':
          return new ort.Tensor('int32', new Int32Array(size).fill(Math.round(t)), dims);
        case 'float16':
          return halfTensor(toHalf(new Float32Array(size).fill(t)), dims);
        default:
          return new ort.Tensor('float32', new Float32Array(size).fill(t), dims);
      }
    };

    const total = scheduler.timesteps.length;
    let unetMs = 0;
    let schedulerMs = 0;
    const loopStart = now();
    // The doubled UNet input is reused every step (onnxruntime reads it during the run only).
    const doubled = guided ? new Float32Array(2 * latents.length) : null;
    for (let i = 0; i < total; i++) {
      if (signal?.aborted) throw new GenerationAbortedError();
      const t = scheduler.timesteps[i]!;
      const scaled = scheduler.scaleModelInput(latents, t);
      let input = scaled;
      if (doubled) {
        doubled.set(scaled, 0);
        doubled.set(scaled, scaled.length);
        input = doubled;
      }
      const u0 = now();
      const prediction = await runBatched(
        u.session,
        u.fixedBatch,
        batch,
        (s, c) => ({
          [u.sample]: floatTensor(input.subarray(s * perImage, (s + c) * perImage), [c, 4, latentH, latentW], u.floatType),
          [u.timestep]: timestepTensor(t, c),
          [u.encoderHiddenStates]: hiddenTensors.get(s)!,
        }),
        u.output,
      );
      unetMs += now() - u0;
      // Classifier-free guidance (see Kernels.guidance), in place over the uncond half.
      const noise = guided ? kernels.guidance(prediction, params.guidance_scale) : prediction;
      const s0 = now();
      latents = scheduler.step(noise, t, latents, generator);
      schedulerMs += now() - s0;
      onStep?.(i + 1, total);
    }
    const denoiseMs = now() - loopStart;
    if (signal?.aborted) throw new GenerationAbortedError();

    // Decode: latents / scaling factor → VAE → [-1, 1] → clamp to [0, 1] → bytes (diffusers' rounding).
    const d0 = now();
    const scale = 1 / model.vaeScalingFactor;
    const scaledLatents = latents.map((v) => v * scale);
    const vae = model.vaeDecoder;
    const decoded = await runBatched(
      vae.session,
      vae.fixedBatch,
      n,
      (s, c) => ({ [vae.input]: floatTensor(scaledLatents.subarray(s * perImage, (s + c) * perImage), [c, 4, latentH, latentW], vae.floatType) }),
      vae.output,
    );
    const decodeMs = now() - d0;

    const p0 = now();
    const pixels = params.width * params.height;
    const infotext = [
      prompt,
      ...(negativePrompt ? [`Negative prompt: ${negativePrompt}`] : []),
      `Steps: ${params.num_inference_steps}, Sampler: ${SAMPLER_LABEL[params.scheduler]}, CFG scale: ${params.guidance_scale}, ` +
        `Seed: ${params.seed}, Size: ${params.width}x${params.height}, Model hash: ${model.hash.slice(0, 10)}`,
    ].join('\n');
    const images: GeneratedImage[] = [];
    for (let img = 0; img < n; img++) {
      // Uint8ClampedArray clamps and rounds halves to even, as numpy's (x * 255).round() on [0, 1].
      const rgb = new Uint8ClampedArray(pixels * 3);
      const base = img * 3 * pixels;
      for (let c = 0; c < 3; c++) {
        const plane = decoded.subarray(base + c * pixels, base + (c + 1) * pixels);
        for (let p = 0; p < pixels; p++) rgb[p * 3 + c] = (plane[p]! / 2 + 0.5) * 255;
      }
      const manifest = {
        model_hash: model.hash,
        scheduler: { name: params.scheduler, config: model.schedulerConfig },
        seed: params.seed,
        image_index: img,
        params: { ...params, prompt, negative_prompt: negativePrompt },
        execution_provider: model.executionProvider,
        onnxruntime_version: onnxruntimeVersion(),
        ...(options.timingsInPng !== true
          ? {}
          : { timings_ms: { text_encoder: round(textMs), denoise: round(denoiseMs), unet: round(unetMs), decode: round(decodeMs) } }),
      };
      images.push({
        png: encodePng({ width: params.width, height: params.height, rgb: new Uint8Array(rgb.buffer) }, [
          ['parameters', infotext],
          ['itemgen', JSON.stringify(manifest)],
        ]),
        width: params.width,
        height: params.height,
      });
    }
    const pngMs = now() - p0;
    return {
      images,
      prompt,
      negativePrompt,
      timingsMs: { textEncoder: textMs, denoise: denoiseMs, unet: unetMs, scheduler: schedulerMs, decode: decodeMs, png: pngMs, total: now() - started },
    };
  }
}

const round = (ms: number) => Math.round(ms * 10) / 10;
