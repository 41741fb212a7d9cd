// Loading a model folder in the diffusers ONNX export layout (docs/architecture.md, decision 6): every
// file checked with a message that names it, inference sessions created once per process on the
// requested execution provider, and the inputs' names, dtypes and shapes read from the sessions
// rather than assumed.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { MODEL_NAME_PATTERN } from '../../core/internal-api.ts';
import type { Logger } from '../../core/log.ts';
import { buildDenoiseStepModel, type UnetNames } from './denoise-graph.ts';
import { hashModelFiles } from './model-hash.ts';
import { SCHEDULER_NAMES, type SchedulerConfig, type SchedulerName } from './schedulers/types.ts';
import { loadClipTokenizer, type ClipTokenizer } from './tokenizer.ts';

export type ExecutionProvider = 'auto' | 'cuda' | 'cpu';

export interface LoadModelOptions {
  executionProvider?: ExecutionProvider;
  /** Threads inside one operator (0: onnxruntime's default). */
  intraOpThreads?: number;
  /** Threads across operators (0: onnxruntime's default). */
  interOpThreads?: number;
  /**
   * Run classifier-free guidance and the affine scheduler steps inside the UNet's session
   * (denoise-graph.ts) instead of on the host between runs. Default: on CUDA yes, on the CPU no
   * (there the host loops are as fast, and they round as torch does: decision 7's bytes).
   */
  denoiseOnDevice?: boolean;
  /** Where the model hash's digest cache is kept (model-hash.ts; default in the model folder); null: not kept. */
  hashCacheFile?: string | null;
  log?: Logger;
}

export class ModelFolderError extends Error {
  override name = 'ModelFolderError';
  constructor(
    readonly file: string,
    problem: string,
  ) {
    super(`${file}: ${problem}`);
  }
}

/** Our own optional `itemgen.json` beside the export. */
export interface ItemgenSettings {
  /** What the API calls the model (GET /v1/models, a generation's `ran.model`); default the folder's name. */
  name: string;
  promptPrefix: string;
  defaultNegativePrompt: string;
  defaultScheduler: SchedulerName;
}

export type FloatType = 'float32' | 'float16';

/** What the pipeline needs to know about the UNet's inputs, read from its session. */
export interface UnetSignature {
  sample: string;
  timestep: string;
  encoderHiddenStates: string;
  output: string;
  floatType: FloatType;
  timestepType: 'int64' | 'int32' | 'float32' | 'float16';
  /** `[]` for a scalar timestep, `[n]` for a batched one. */
  timestepRank: 0 | 1;
  /** A number when the batch dimension is fixed in the graph (e.g. 1), null when dynamic. */
  fixedBatch: number | null;
  /**
   * `host`: the session is the UNet itself. `device`: it is the denoising step of denoise-graph.ts
   * (float32 latents in, guided noise and the affine step's latents out), and `floatType` is still
   * the UNet's, which its encoder states take.
   */
  denoiser: 'host' | 'device';
}

export interface Model {
  dir: string;
  /** sha256 over the ONNX files and their external weights, hex; the first 10 are the infotext's "Model hash". */
  hash: string;
  executionProvider: 'cuda' | 'cpu';
  tokenizer: ClipTokenizer;
  schedulerConfig: SchedulerConfig;
  vaeScalingFactor: number;
  settings: ItemgenSettings;
  textEncoder: { session: ort.InferenceSession; input: string; inputType: 'int32' | 'int64'; output: string; fixedBatch: number | null };
  unet: { session: ort.InferenceSession } & UnetSignature;
  vaeDecoder: { session: ort.InferenceSession; input: string; output: string; floatType: FloatType; fixedBatch: number | null };
}

const loaded = new Map<string, Promise<Model>>();

/** The UNet's input names (diffusers' and optimum's exports) and the output names it may have, preferred first. */
const UNET_NAMES: UnetNames = { sample: 'sample', encoderHiddenStates: 'encoder_hidden_states', outputs: ['out_sample'] };

/** Loads a model folder once per process (same folder and options → same sessions). */
export function loadModel(dir: string, options: LoadModelOptions = {}): Promise<Model> {
  const key = JSON.stringify([
    path.resolve(dir),
    options.executionProvider ?? 'auto',
    options.intraOpThreads ?? 0,
    options.interOpThreads ?? 0,
    options.denoiseOnDevice ?? null,
  ]);
  let model = loaded.get(key);
  if (!model) {
    model = openModel(path.resolve(dir), options);
    loaded.set(key, model);
    model.catch(() => loaded.delete(key));
  }
  return model;
}

async function readJson(dir: string, file: string, optional: true): Promise<Record<string, unknown> | null>;
async function readJson(dir: string, file: string, optional?: false): Promise<Record<string, unknown>>;
async function readJson(dir: string, file: string, optional = false): Promise<Record<string, unknown> | null> {
  let text: string;
  try {
    text = await fsp.readFile(path.join(dir, file), 'utf8');
  } catch (err) {
    if (optional && (err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new ModelFolderError(file, (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : (err as Error).message);
  }
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not a JSON object');
    return value as Record<string, unknown>;
  } catch (err) {
    throw new ModelFolderError(file, `invalid JSON (${(err as Error).message})`);
  }
}

/** The folder's name as a model name: what MODEL_NAME_PATTERN refuses becomes "-". */
function folderModelName(dir: string): string {
  const name = path.basename(dir).replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 100);
  return name || 'model';
}

function readSettings(raw: Record<string, unknown> | null, dir: string): ItemgenSettings {
  const text = (key: string, fallback: string) => {
    const v = raw?.[key];
    if (v === undefined) return fallback;
    if (typeof v !== 'string') throw new ModelFolderError('itemgen.json', `${key} must be a string`);
    return v;
  };
  const scheduler = text('default_scheduler', 'ddim');
  if (!(SCHEDULER_NAMES as readonly string[]).includes(scheduler)) {
    throw new ModelFolderError('itemgen.json', `default_scheduler must be one of ${SCHEDULER_NAMES.join(', ')}`);
  }
  const name = text('name', folderModelName(dir));
  if (!MODEL_NAME_PATTERN.test(name)) {
    throw new ModelFolderError('itemgen.json', 'name must be 1 to 100 letters, digits, ".", "_" or "-", starting with a letter or digit');
  }
  return {
    name,
    promptPrefix: text('prompt_prefix', ''),
    defaultNegativePrompt: text('default_negative_prompt', ''),
    defaultScheduler: scheduler as SchedulerName,
  };
}

/** The model hash, logged with the time it took: hashing gigabytes of weights is part of a start. */
async function modelHash(dir: string, options: LoadModelOptions): Promise<string> {
  const started = performance.now();
  const { hash, cached, notStored } = await hashModelFiles(dir, options.hashCacheFile === undefined ? {} : { cacheFile: options.hashCacheFile });
  const fields = { ms: Math.round(performance.now() - started), cached };
  options.log?.info('model hashed', notStored === undefined ? fields : { ...fields, cache_not_stored: notStored });
  return hash;
}

/**
 * Whether onnxruntime-node has its CUDA execution provider library beside its binding. The npm
 * package does not carry it (the runner image's build downloads it), and asking onnxruntime for
 * CUDA without it makes onnxruntime log an error of its own before failing: checked first, `auto`
 * says why it runs on the CPU in one line of ours.
 */
export function cudaProviderInstalled(): boolean {
  const bin = path.join(path.dirname(createRequire(import.meta.url).resolve('onnxruntime-node/package.json')), 'bin');
  const lib = process.platform === 'win32' ? 'onnxruntime_providers_cuda.dll' : 'libonnxruntime_providers_cuda.so';
  const napiDirs = fs.existsSync(bin) ? fs.readdirSync(bin) : [];
  return napiDirs.some((napi) => fs.existsSync(path.join(bin, napi, process.platform, process.arch, lib)));
}

/** A model file, or a graph built here (denoise-graph.ts) whose external weights lie in `folder`. */
type SessionSource = string | { bytes: Uint8Array; folder: string };

/**
 * The CUDA execution provider as onnxruntime-node 1.30 configures it: its binding passes only
 * `deviceId` to onnxruntime's CUDA provider options and takes no others, so the provider runs with
 * onnxruntime's defaults, which are what Stable Diffusion wants: cuDNN's exhaustive convolution
 * algorithm search (`cudnn_conv_algo_search` EXHAUSTIVE, once per input shape, on the first run:
 * warm up before measuring), the largest workspace it asks for (`cudnn_conv_use_max_workspace` 1),
 * copies on the compute stream (`do_copy_in_default_stream` 1). Decision 21 has the sources.
 */
const CUDA_PROVIDER: ort.InferenceSession.ExecutionProviderConfig = { name: 'cuda', deviceId: 0 };

async function createSession(source: SessionSource, provider: 'cuda' | 'cpu', options: LoadModelOptions): Promise<ort.InferenceSession> {
  // A graph given as bytes has no folder of its own to find its external weights in.
  const weights = typeof source === 'string' ? {} : { model_external_initializers_file_folder_path: source.folder };
  const sessionOptions: ort.InferenceSession.SessionOptions = {
    executionProviders: [provider === 'cuda' ? CUDA_PROVIDER : 'cpu'],
    graphOptimizationLevel: 'all',
    // onnxruntime's pool threads spin after each run by default, taking the core the scheduler and
    // guidance math need between UNet runs; let them sleep instead.
    extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' }, ...weights } },
    ...(options.intraOpThreads ? { intraOpNumThreads: options.intraOpThreads } : {}),
    ...(options.interOpThreads ? { interOpNumThreads: options.interOpThreads } : {}),
  };
  return typeof source === 'string' ? ort.InferenceSession.create(source, sessionOptions) : ort.InferenceSession.create(source.bytes, sessionOptions);
}

function tensorInput(session: ort.InferenceSession, file: string, names: string[]): ort.InferenceSession.TensorValueMetadata {
  const found = session.inputMetadata.find((m) => names.includes(m.name));
  if (!found) throw new ModelFolderError(file, `no input named ${names.join(' or ')} (inputs: ${session.inputNames.join(', ')})`);
  if (!found.isTensor) throw new ModelFolderError(file, `input ${found.name} is not a tensor`);
  return found;
}

function firstOutput(session: ort.InferenceSession, file: string, preferred: string[]): string {
  const name = session.outputNames.find((n) => preferred.includes(n)) ?? session.outputNames[0];
  if (!name) throw new ModelFolderError(file, 'has no outputs');
  return name;
}

const batchOf = (meta: ort.InferenceSession.TensorValueMetadata) => {
  const d = meta.shape[0];
  return typeof d === 'number' && d > 0 ? d : null;
};

function floatTypeOf(meta: ort.InferenceSession.TensorValueMetadata, file: string): FloatType {
  if (meta.type === 'float32' || meta.type === 'float16') return meta.type;
  throw new ModelFolderError(file, `input ${meta.name} has type ${meta.type}; expected float32 or float16`);
}

async function openModel(dir: string, options: LoadModelOptions): Promise<Model> {
  const stat = await fsp.stat(dir).catch(() => null);
  if (!stat?.isDirectory()) throw new ModelFolderError(dir, 'is not a folder');
  await readJson(dir, 'model_index.json');
  const schedulerConfig = await readJson(dir, 'scheduler/scheduler_config.json');
  const settings = readSettings(await readJson(dir, 'itemgen.json', true), dir);
  const vaeConfig = await readJson(dir, 'vae_decoder/config.json', true);
  const scaling = vaeConfig?.scaling_factor ?? 0.18215;
  if (typeof scaling !== 'number' || !(scaling > 0)) throw new ModelFolderError('vae_decoder/config.json', 'scaling_factor must be a positive number');
  const tokenizer = await loadClipTokenizer(path.join(dir, 'tokenizer'));
  for (const file of ['text_encoder/model.onnx', 'unet/model.onnx', 'vae_decoder/model.onnx']) {
    if (!fs.existsSync(path.join(dir, file))) throw new ModelFolderError(file, 'missing');
  }

  const requested = options.executionProvider ?? 'auto';
  let provider: 'cuda' | 'cpu' = requested === 'cpu' ? 'cpu' : 'cuda';
  if (provider === 'cuda' && !cudaProviderInstalled()) {
    const why = "onnxruntime-node's CUDA execution provider is not installed (its install script downloads it with ONNXRUNTIME_NODE_INSTALL=true)";
    if (requested === 'cuda') throw new Error(`EXECUTION_PROVIDER=cuda but CUDA is unavailable: ${why}`);
    options.log?.warn('CUDA execution provider unavailable; using CPU', { reason: why });
    provider = 'cpu';
  }
  const open = async (file: string, source: SessionSource = path.join(dir, file)) => {
    try {
      return await createSession(source, provider, options);
    } catch (err) {
      if (provider === 'cuda' && requested === 'auto') {
        options.log?.warn('CUDA execution provider unavailable; using CPU', { reason: (err as Error).message });
        provider = 'cpu';
        return createSession(source, provider, options);
      }
      if (provider === 'cuda') throw new Error(`EXECUTION_PROVIDER=cuda but CUDA is unavailable: ${(err as Error).message}`);
      throw new ModelFolderError(file, `onnxruntime could not load it: ${(err as Error).message}`);
    }
  };

  const textFile = 'text_encoder/model.onnx';
  const text = await open(textFile);
  const ids = tensorInput(text, textFile, ['input_ids']);
  if (ids.type !== 'int32' && ids.type !== 'int64') throw new ModelFolderError(textFile, `input_ids has type ${ids.type}; expected int32 or int64`);

  const unetFile = 'unet/model.onnx';
  const { session: unet, denoiser } = await openUnet(dir, unetFile, options.denoiseOnDevice ?? provider === 'cuda', open, options.log);
  const sample = tensorInput(unet, unetFile, ['sample']);
  const timestep = tensorInput(unet, unetFile, ['timestep']);
  const hidden = tensorInput(unet, unetFile, ['encoder_hidden_states']);
  if (!['int64', 'int32', 'float32', 'float16'].includes(timestep.type)) {
    throw new ModelFolderError(unetFile, `timestep has type ${timestep.type}`);
  }
  if (timestep.shape.length > 1) throw new ModelFolderError(unetFile, `timestep must be a scalar or 1-D, has shape [${timestep.shape.join(', ')}]`);

  const vaeFile = 'vae_decoder/model.onnx';
  const vae = await open(vaeFile);
  const latent = tensorInput(vae, vaeFile, ['latent_sample']);

  return {
    dir,
    hash: await modelHash(dir, options),
    executionProvider: provider,
    tokenizer,
    schedulerConfig,
    vaeScalingFactor: scaling,
    settings,
    textEncoder: {
      session: text,
      input: ids.name,
      inputType: ids.type,
      output: firstOutput(text, textFile, ['last_hidden_state']),
      fixedBatch: batchOf(ids),
    },
    unet: {
      session: unet,
      sample: sample.name,
      timestep: timestep.name,
      encoderHiddenStates: hidden.name,
      output: firstOutput(unet, unetFile, ['out_sample']),
      // The denoising step takes float32 latents; its encoder states are in the UNet's precision.
      floatType: floatTypeOf(denoiser === 'device' ? hidden : sample, unetFile),
      timestepType: timestep.type as UnetSignature['timestepType'],
      timestepRank: timestep.shape.length as 0 | 1,
      fixedBatch: batchOf(sample),
      denoiser,
    },
    vaeDecoder: {
      session: vae,
      input: latent.name,
      output: firstOutput(vae, vaeFile, ['sample']),
      floatType: floatTypeOf(latent, vaeFile),
      fixedBatch: batchOf(latent),
    },
  };
}

/**
 * The UNet's session: the denoising step of denoise-graph.ts built around it when asked for, else
 * (or where it cannot be built or loaded, said in one log line) the UNet as it is.
 */
async function openUnet(
  dir: string,
  file: string,
  onDevice: boolean,
  open: (file: string, source?: SessionSource) => Promise<ort.InferenceSession>,
  log: Logger | undefined,
): Promise<{ session: ort.InferenceSession; denoiser: UnetSignature['denoiser'] }> {
  if (onDevice) {
    try {
      const bytes = buildDenoiseStepModel(await fsp.readFile(path.join(dir, file)), UNET_NAMES);
      return { session: await open(file, { bytes, folder: path.join(dir, path.dirname(file)) }), denoiser: 'device' };
    } catch (err) {
      // Whatever failed (a graph this cannot wrap, onnxruntime refusing it), the UNet as it is may
      // still run, and if it cannot either, opening it says why.
      log?.warn('denoising step on the device unavailable; guidance and the scheduler run on the host', { reason: (err as Error).message });
    }
  }
  return { session: await open(file), denoiser: 'host' };
}

export const onnxruntimeVersion = (): string => ort.env.versions.node ?? ort.env.versions.common;
