// Text to image (after diffusers' StableDiffusionPipeline), in its stages: prepareInputs (prompt
// template, defaults), encodePrompt (text encoder, classifier-free guidance's pair), prepareLatents
// (the seed's noise), denoise (the scheduler loop), decodeLatents (VAE) and encodeImages (PNG with
// parameters). Each is one function so that a change to one stage (previews, per-image seeds,
// pipelining) touches one place; a runner that pipelines jobs calls the three exported stages
// (encodeRequestPrompt, generateFromEmbeddings, encodeDecodedImages) that `txt2img` composes. It composes the model and a scheduler and never knows which
// scheduler it runs.
import { imageSeed, type GenerationParams } from '../../core/request.ts';
import type { Model } from './model.ts';
import { onnxruntimeVersion } from './model.ts';
import { encodePng } from './png.ts';
import { latentPreview } from './latent-preview.ts';
import { createBatchGenerator, type Generator } from './rng.ts';
import { kernels } from './kernels/index.ts';
import { createScheduler } from './schedulers/index.ts';
import type { Scheduler, SchedulerName } from './schedulers/types.ts';
import { DENOISE_INPUTS, DENOISE_OUTPUTS } from './denoise-graph.ts';
import { floatTensor, runBatched } from './session-io.ts';
import { halfTensor, toHalf } from './tensors.ts';
import ort from 'onnxruntime-node';
import { withSpan } from '../../telemetry/index.ts';

export interface Txt2ImgOptions {
  /**
   * Called after each denoising step with (step done, total steps, preview): `preview()` renders
   * the first image's current latents as a small PNG (latent-preview.ts), only when called and
   * only during this call.
   */
  onStep?: (step: number, total: number, preview: () => Buffer) => void;
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
  /** The seed this image ran with (core/request.ts imageSeed). */
  seed: number;
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

function applyPrefix(prefix: string, prompt: string): string {
  return prefix && !prompt.toLowerCase().startsWith(prefix.trim().toLowerCase()) ? prefix + prompt : prompt;
}

/** The request as the stages run it: the model's prompt template and default negative prompt applied. */
interface PipelineInputs {
  params: GenerationParams;
  prompt: string;
  negativePrompt: string;
  /** Classifier-free guidance runs the UNet on [uncond, cond] pairs; a scale of 1 or less skips it. */
  guided: boolean;
  latent: LatentShape;
}

/** One image's latents: 4 channels at an eighth of the image size. */
interface LatentShape {
  height: number;
  width: number;
  /** Floats per image. */
  size: number;
}

/** Text-encoder states for the UNet, [uncond × n, cond × n] when guided (diffusers' order), else [cond × n]. */
interface PromptEmbeddings {
  hidden: Float32Array;
  batch: number;
  seqLen: number;
  hiddenSize: number;
}

/** What the denoising loop leaves: the final latents and where its time went. */
interface Denoised {
  latents: Float32Array;
  /** `steps`: each step's time, in order. */
  ms: { denoise: number; unet: number; scheduler: number; steps: number[] };
}

/** Resolves the request into what the stages need (diffusers' check_inputs and prompt defaults). */
function prepareInputs(model: Model, params: GenerationParams): PipelineInputs {
  const height = params.height / 8;
  const width = params.width / 8;
  return {
    params,
    prompt: applyPrefix(model.settings.promptPrefix, params.prompt),
    negativePrompt: params.negative_prompt || model.settings.defaultNegativePrompt,
    guided: params.guidance_scale > 1,
    latent: { height, width, size: 4 * height * width },
  };
}

/** Tokenizes and encodes the prompt (and the negative prompt when guided), repeated per image. */
async function encodePrompt(model: Model, inputs: PipelineInputs): Promise<PromptEmbeddings> {
  const n = inputs.params.num_images;
  const texts = inputs.guided ? [inputs.negativePrompt, inputs.prompt] : [inputs.prompt];
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
  return { hidden, batch, seqLen, hiddenSize };
}

/**
 * The initial noise, exactly as torch.randn on a CPU generator would draw it (each image from its
 * own seed's generator), scaled to the scheduler's initial sigma (call after setTimesteps, which sets it).
 */
function prepareLatents(generator: Generator, scheduler: Scheduler, inputs: PipelineInputs): Float32Array {
  const latents = generator.randn(inputs.params.num_images * inputs.latent.size);
  return scheduler.initNoiseSigma === 1 ? latents : latents.map((v) => v * scheduler.initNoiseSigma);
}

/** The UNet's timestep input in the type and rank the graph declares. */
function timestepTensor(unet: Model['unet'], t: number, count: number): ort.Tensor {
  const dims = unet.timestepRank === 0 ? [] : [count];
  const size = unet.timestepRank === 0 ? 1 : count;
  switch (unet.timestepType) {
    case 'int64':
      return new ort.Tensor('int64', new BigInt64Array(size).fill(BigInt(Math.round(t))), dims);
    case 'int32':
      return new ort.Tensor('int32', new Int32Array(size).fill(Math.round(t)), dims);
    case 'float16':
      return halfTensor(toHalf(new Float32Array(size).fill(t)), dims);
    default:
      return new ort.Tensor('float32', new Float32Array(size).fill(t), dims);
  }
}

/** What one denoising step did: the next latents, and its time inside onnxruntime and in the scheduler. */
interface StepResult {
  latents: Float32Array;
  unetMs: number;
  schedulerMs: number;
}

/** One denoising step at timestep t: the UNet, guidance and the scheduler's step. */
type DenoiseStep = (t: number, latents: Float32Array) => Promise<StepResult>;

/**
 * The step with guidance and the scheduler on the host: the UNet's session is the UNet itself, run
 * on the doubled latents (per image where its batch is fixed), its output read back in float32.
 */
function hostStep(model: Model, scheduler: Scheduler, generator: Generator, inputs: PipelineInputs, embeddings: PromptEmbeddings): DenoiseStep {
  const { height, width, size } = inputs.latent;
  const { hidden, batch, seqLen, hiddenSize } = embeddings;
  const perText = seqLen * hiddenSize;
  const u = model.unet;
  const unetBatch = u.fixedBatch ?? batch;
  // Encoder states do not change during the loop: convert them once per batch slice.
  const hiddenTensors = new Map<number, ort.Tensor>();
  for (let s = 0; s < batch; s += unetBatch) {
    const count = Math.min(unetBatch, batch - s);
    hiddenTensors.set(s, floatTensor(hidden.subarray(s * perText, (s + count) * perText), [count, seqLen, hiddenSize], u.floatType));
  }
  // The doubled UNet input is reused every step (onnxruntime reads it during the run only).
  const doubled = inputs.guided ? new Float32Array(2 * inputs.params.num_images * size) : null;
  return async (t, latents) => {
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
        [u.sample]: floatTensor(input.subarray(s * size, (s + c) * size), [c, 4, height, width], u.floatType),
        [u.timestep]: timestepTensor(u, t, c),
        [u.encoderHiddenStates]: hiddenTensors.get(s)!,
      }),
      u.output,
    );
    const unetMs = now() - u0;
    // Classifier-free guidance (see Kernels.guidance), in place over the uncond half.
    const noise = inputs.guided ? kernels.guidance(prediction, inputs.params.guidance_scale) : prediction;
    const s0 = now();
    const next = scheduler.step(noise, t, latents, generator);
    return { latents: next, unetMs, schedulerMs: now() - s0 };
  };
}

/**
 * The step on the denoising-step graph (denoise-graph.ts, decision 21): one run takes the float32
 * latents and gives the next ones where the scheduler's step is affine, else the guided noise for
 * the scheduler's own step on the host. Guidance's batch of two and float16 stay on the device.
 */
function deviceStep(model: Model, scheduler: Scheduler, generator: Generator, inputs: PipelineInputs, embeddings: PromptEmbeddings): DenoiseStep {
  const { height, width } = inputs.latent;
  const { hidden, batch, seqLen, hiddenSize } = embeddings;
  const u = model.unet;
  const states = floatTensor(hidden, [batch, seqLen, hiddenSize], u.floatType);
  const scalar = (value: number) => new ort.Tensor('float32', Float32Array.of(value), [1]);
  // Without guidance the states are one batch and the graph's difference term is zero.
  const guidance = scalar(inputs.guided ? inputs.params.guidance_scale : 1);
  const dims = [inputs.params.num_images, 4, height, width];
  return async (t, latents) => {
    const s0 = now();
    const affine = scheduler.affineStep?.(t);
    const sample = affine ? latents : scheduler.scaleModelInput(latents, t);
    const prepareMs = now() - s0;
    const output = affine ? DENOISE_OUTPUTS.prevSample : DENOISE_OUTPUTS.noisePred;
    const u0 = now();
    const result = await u.session.run(
      {
        [u.sample]: new ort.Tensor('float32', sample, dims),
        [u.timestep]: timestepTensor(u, t, batch),
        [u.encoderHiddenStates]: states,
        [DENOISE_INPUTS.guidanceScale]: guidance,
        [DENOISE_INPUTS.sampleDivisor]: scalar(affine?.sampleDivisor ?? 1),
        [DENOISE_INPUTS.sampleCoeff]: scalar(affine?.sampleCoeff ?? 0),
        [DENOISE_INPUTS.noiseCoeff]: scalar(affine?.noiseCoeff ?? 0),
      },
      [output],
    );
    const unetMs = now() - u0;
    const values = result[output]!.data as Float32Array;
    if (affine) return { latents: values, unetMs, schedulerMs: prepareMs };
    const s1 = now();
    const next = scheduler.step(values, t, latents, generator);
    return { latents: next, unetMs, schedulerMs: prepareMs + now() - s1 };
  };
}

/** The scheduler loop: UNet, guidance, scheduler step, once per timestep; aborting stops it between steps. */
async function denoise(
  model: Model,
  scheduler: Scheduler,
  generator: Generator,
  inputs: PipelineInputs,
  embeddings: PromptEmbeddings,
  initialLatents: Float32Array,
  options: Txt2ImgOptions,
): Promise<Denoised> {
  const { signal, onStep } = options;
  const { height, width, size } = inputs.latent;
  const step = (model.unet.denoiser === 'device' ? deviceStep : hostStep)(model, scheduler, generator, inputs, embeddings);
  let latents = initialLatents;
  const total = scheduler.timesteps.length;
  let unetMs = 0;
  let schedulerMs = 0;
  const steps: number[] = [];
  const loopStart = now();
  for (let i = 0; i < total; i++) {
    if (signal?.aborted) throw new GenerationAbortedError();
    const stepStart = now();
    const done = await step(scheduler.timesteps[i]!, latents);
    latents = done.latents;
    unetMs += done.unetMs;
    schedulerMs += done.schedulerMs;
    steps.push(now() - stepStart);
    const current = latents;
    onStep?.(i + 1, total, () => latentPreview(current.subarray(0, size), width, height));
  }
  const denoiseMs = now() - loopStart;
  if (signal?.aborted) throw new GenerationAbortedError();
  return { latents, ms: { denoise: denoiseMs, unet: unetMs, scheduler: schedulerMs, steps } };
}

/** Latents / scaling factor → VAE → images in [-1, 1], planar RGB per image. */
async function decodeLatents(model: Model, latents: Float32Array, inputs: PipelineInputs): Promise<Float32Array> {
  const { height, width, size } = inputs.latent;
  const scale = 1 / model.vaeScalingFactor;
  const scaledLatents = latents.map((v) => v * scale);
  const vae = model.vaeDecoder;
  return runBatched(
    vae.session,
    vae.fixedBatch,
    inputs.params.num_images,
    (s, c) => ({ [vae.input]: floatTensor(scaledLatents.subarray(s * size, (s + c) * size), [c, 4, height, width], vae.floatType) }),
    vae.output,
  );
}

/** The A1111-style "parameters" text of one image: prompt, negative prompt, then the settings line with its seed. */
function infotext(model: Model, inputs: PipelineInputs, seed: number): string {
  const { params, prompt, negativePrompt } = inputs;
  return [
    prompt,
    ...(negativePrompt ? [`Negative prompt: ${negativePrompt}`] : []),
    `Steps: ${params.num_inference_steps}, Sampler: ${SAMPLER_LABEL[params.scheduler]}, CFG scale: ${params.guidance_scale}, ` +
      `Seed: ${seed}, Size: ${params.width}x${params.height}, Model hash: ${model.hash.slice(0, 10)}`,
  ].join('\n');
}

/** Decoded images → bytes (diffusers' rounding) → PNGs carrying the infotext and the itemgen manifest. */
function encodeImages(
  model: Model,
  inputs: PipelineInputs,
  decoded: Float32Array,
  timings: Record<string, number> | undefined,
): GeneratedImage[] {
  const { params } = inputs;
  const pixels = params.width * params.height;
  const images: GeneratedImage[] = [];
  for (let img = 0; img < params.num_images; img++) {
    const seed = imageSeed(params.seed, img);
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
      seed,
      // What reruns this image alone, to these very bytes: its own seed, one image (so no batch
      // index here either; the API's images[].index says where it stood in its batch).
      params: { ...params, seed, num_images: 1, prompt: inputs.prompt, negative_prompt: inputs.negativePrompt },
      execution_provider: model.executionProvider,
      onnxruntime_version: onnxruntimeVersion(),
      ...(timings === undefined ? {} : { timings_ms: timings }),
    };
    images.push({
      png: encodePng({ width: params.width, height: params.height, rgb: new Uint8Array(rgb.buffer) }, [
        ['parameters', infotext(model, inputs, seed)],
        ['itemgen', JSON.stringify(manifest)],
      ]),
      width: params.width,
      height: params.height,
      seed,
    });
  }
  return images;
}

/** A request with its prompt encoded: the text encoder's stage done, what `generateFromEmbeddings` continues from. */
export interface EncodedPrompt {
  readonly model: Model;
  readonly inputs: PipelineInputs;
  readonly embeddings: PromptEmbeddings;
  readonly textEncoderMs: number;
}

/** A generation's decoded images, before PNG: the model's part done (denoising and the VAE). */
export interface DecodedImages {
  readonly encoded: EncodedPrompt;
  readonly decoded: Float32Array;
  readonly ms: Denoised['ms'] & { decode: number };
}

/**
 * The first stage alone: the request resolved and its prompt encoded. With the next two it is
 * `txt2img`, split so that a runner can encode the next job's prompt while another generation runs
 * and encode PNGs after the model is free (docs/architecture.md, decision 19).
 */
export async function encodeRequestPrompt(model: Model, params: GenerationParams): Promise<EncodedPrompt> {
  const inputs = prepareInputs(model, params);
  // A span per stage; the denoising loop is one span whose attributes hold each step's time.
  const t0 = now();
  const embeddings = await withSpan('text encoder', {}, () => encodePrompt(model, inputs));
  return { model, inputs, embeddings, textEncoderMs: now() - t0 };
}

/** The second stage: the seed's latents, the denoising loop and the VAE; aborting stops it between steps. */
export async function generateFromEmbeddings(encoded: EncodedPrompt, options: Txt2ImgOptions = {}): Promise<DecodedImages> {
  const { model, inputs, embeddings } = encoded;
  const { params } = inputs;
  const generator = createBatchGenerator(Array.from({ length: params.num_images }, (_, i) => imageSeed(params.seed, i)));
  const scheduler = acquireScheduler(model, params.scheduler);
  let denoised: Denoised;
  try {
    scheduler.setTimesteps(params.num_inference_steps);
    denoised = await withSpan('denoise', { 'itemgen.denoise.scheduler': params.scheduler }, async (span) => {
      const done = await denoise(model, scheduler, generator, inputs, embeddings, prepareLatents(generator, scheduler, inputs), options);
      if (span.isRecording()) {
        const { steps } = done.ms;
        span.setAttributes({
          'itemgen.denoise.steps': steps.length,
          'itemgen.denoise.step_ms': steps.map(round),
          'itemgen.denoise.step_ms.mean': round(steps.reduce((a, b) => a + b, 0) / Math.max(1, steps.length)),
          'itemgen.denoise.step_ms.max': round(Math.max(0, ...steps)),
          'itemgen.denoise.unet_ms': round(done.ms.unet),
        });
      }
      return done;
    });
  } finally {
    releaseScheduler(model, params.scheduler, scheduler);
  }

  const d0 = now();
  const decoded = await withSpan('vae decode', {}, () => decodeLatents(model, denoised.latents, inputs));
  return { encoded, decoded, ms: { ...denoised.ms, decode: now() - d0 } };
}

/** The last stage: PNGs with their parameters; no model session runs here. */
export async function encodeDecodedImages(generated: DecodedImages, options: Pick<Txt2ImgOptions, 'timingsInPng'> = {}): Promise<Txt2ImgResult> {
  const { model, inputs, textEncoderMs: textMs } = generated.encoded;
  const { ms } = generated;
  const p0 = now();
  const pngTimings =
    options.timingsInPng === true
      ? { text_encoder: round(textMs), denoise: round(ms.denoise), unet: round(ms.unet), decode: round(ms.decode) }
      : undefined;
  const images = await withSpan('png', { 'itemgen.images': inputs.params.num_images }, () => encodeImages(model, inputs, generated.decoded, pngTimings));
  const pngMs = now() - p0;
  return {
    images,
    prompt: inputs.prompt,
    negativePrompt: inputs.negativePrompt,
    // The stages' own time: a runner may run them apart, with waits between that are not the pipeline's.
    timingsMs: { textEncoder: textMs, denoise: ms.denoise, unet: ms.unet, scheduler: ms.scheduler, decode: ms.decode, png: pngMs, total: textMs + ms.denoise + ms.decode + pngMs },
  };
}

export async function txt2img(model: Model, params: GenerationParams, options: Txt2ImgOptions = {}): Promise<Txt2ImgResult> {
  const encoded = await encodeRequestPrompt(model, params);
  return encodeDecodedImages(await generateFromEmbeddings(encoded, options), options);
}

const round = (ms: number) => Math.round(ms * 10) / 10;
