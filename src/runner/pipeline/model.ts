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

/** Loads a model folder once per process (same folder and options → same sessions). */
export function loadModel(dir: string, options: LoadModelOptions = {}): Promise<Model> {
  const key = JSON.stringify([path.resolve(dir), options.executionProvider ?? 'auto', options.intraOpThreads ?? 0, options.interOpThreads ?? 0]);
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

async function createSession(
  file: string,
  provider: 'cuda' | 'cpu',
  options: LoadModelOptions,
): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(file, {
    executionProviders: [provider],
    graphOptimizationLevel: 'all',
    // onnxruntime's pool threads spin after each run by default, taking the core the scheduler and
    // guidance math need between UNet runs; let them sleep instead.
    extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
    ...(options.intraOpThreads ? { intraOpNumThreads: options.intraOpThreads } : {}),
    ...(options.interOpThreads ? { interOpNumThreads: options.interOpThreads } : {}),
  });
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
  const open = async (file: string) => {
    try {
      return await createSession(path.join(dir, file), provider, options);
    } catch (err) {
      if (provider === 'cuda' && requested === 'auto') {
        options.log?.warn('CUDA execution provider unavailable; using CPU', { reason: (err as Error).message });
        provider = 'cpu';
        return createSession(path.join(dir, file), provider, options);
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
  const unet = await open(unetFile);
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
      floatType: floatTypeOf(sample, unetFile),
      timestepType: timestep.type as UnetSignature['timestepType'],
      timestepRank: timestep.shape.length as 0 | 1,
      fixedBatch: batchOf(sample),
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

export const onnxruntimeVersion = (): string => ort.env.versions.node ?? ort.env.versions.common;
