// Writes a tiny Stable-Diffusion-shaped model folder in the diffusers ONNX export layout, with
// small deterministic random weights: tests and the embedded default run the whole pipeline on it,
// since no real weights can be downloaded here. Its images are noise, but every model really
// depends on all of its inputs, so a pipeline that drops one shows up as an unchanged image.
//
// Signatures follow the exports (diffusers' convert_stable_diffusion_checkpoint_to_onnx.py and
// optimum both export input_ids as int32). The timestep is a 1-D [batch] tensor as in both; it is
// int64 by default as optimum exports it, while diffusers' script exports it in the model's float
// type — `timestepType: 'float32'` covers that. The sequence length is fixed at 77 (SD 1.5's
// tokenizer always pads to it) and the UNet's channels at 4, where real exports leave them dynamic.
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import onnxProto from 'onnx-proto';
import { toHalfBits } from './tensors.ts';
import { BYTE_SYMBOL, bpe, byteSymbols } from './tokenizer.ts';

const { onnx } = onnxProto;
const { DataType, DataLocation } = onnx.TensorProto;
const { AttributeType } = onnx.AttributeProto;

export interface TinyModelOptions {
  /** Seeds the weights; the same seed gives byte-identical files. */
  seed?: number;
  /** float16 weights, inputs and outputs, as fp16 GPU exports are (input_ids and timestep keep their types). */
  fp16?: boolean;
  /** UNet batch dimension fixed to 1, as some exports have it: the pipeline must run it per image. */
  fixedBatch?: boolean;
  timestepType?: 'int64' | 'float32';
}

const MAX_LENGTH = 77;
/** Text hidden size, which is also the UNet's cross-attention dimension. */
const HIDDEN = 32;
const UNET_CHANNELS = 32;
const VAE_CHANNELS = 8;
/** Half the size of the sinusoidal timestep embedding. */
const TIME_FREQUENCIES = 16;
const LATENT_CHANNELS = 4;
const VAE_SCALING_FACTOR = 0.18215;
const OPSET = 17;
const IR_VERSION = 8;
const DIFFUSERS_VERSION = '0.30.0';

/** Stable Diffusion 1.5's scheduler/scheduler_config.json, which the tiny model ships as its own. */
export const SD15_SCHEDULER_CONFIG = {
  _class_name: 'PNDMScheduler',
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  beta_start: 0.00085,
  clip_sample: false,
  num_train_timesteps: 1000,
  prediction_type: 'epsilon',
  set_alpha_to_one: false,
  skip_prk_steps: true,
  steps_offset: 1,
  timestep_spacing: 'leading',
  trained_betas: null,
};
const UNET_WEIGHTS_FILE = 'weights.pb';

/** Words the tokenizer knows whole; anything else falls back to smaller pieces and single bytes. */
const VOCABULARY_WORDS = [
  'tsuki', 'advtr', 'sword', 'shield', 'potion', 'glowing', 'blurry', 'low', 'quality', 'magic',
  'ring', 'red', 'blue', 'green', 'gold', 'iron', 'wooden', 'fire', 'ice', 'staff', 'bow', 'helmet',
  'armor', 'icon', 'item', 'pixel', 'art', 'of', 'the', 'and', 'with',
];

/**
 * Writes the model folder (creating it) and resolves to the relative paths written. Weights depend
 * only on the seed, so the fixed-batch and float-timestep variants compute the same function.
 */
export async function writeTinyModel(dir: string, options: TinyModelOptions = {}): Promise<string[]> {
  const files = tinyModelFiles(options);
  for (const [file, bytes] of files) {
    await mkdir(dirname(join(dir, file)), { recursive: true });
    await writeFile(join(dir, file), bytes);
  }
  return [...files.keys()];
}

function tinyModelFiles(options: TinyModelOptions): Map<string, Uint8Array> {
  const random = new WeightRandom(options.seed ?? 0);
  const float = options.fp16 ? FLOAT16 : FLOAT32;
  const tokenizer = clipTokenizer(VOCABULARY_WORDS);
  const textEncoder = textEncoderModel(random, float, tokenizer.vocab.size);
  const unet = unetModel(random, float, options.fixedBatch ?? false, options.timestepType ?? 'int64');
  const vaeDecoder = vaeDecoderModel(random, float);

  const files = new Map<string, Uint8Array>();
  const json = (file: string, value: unknown) => files.set(file, Buffer.from(`${JSON.stringify(value, null, 2)}\n`));
  json('model_index.json', {
    _class_name: 'OnnxStableDiffusionPipeline',
    _diffusers_version: DIFFUSERS_VERSION,
    feature_extractor: [null, null],
    requires_safety_checker: false,
    safety_checker: [null, null],
    scheduler: ['diffusers', 'PNDMScheduler'],
    text_encoder: ['diffusers', 'OnnxRuntimeModel'],
    tokenizer: ['transformers', 'CLIPTokenizer'],
    unet: ['diffusers', 'OnnxRuntimeModel'],
    vae_decoder: ['diffusers', 'OnnxRuntimeModel'],
    vae_encoder: [null, null],
  });
  json('itemgen.json', {
    prompt_prefix: 'tsuki_advtr, ',
    default_negative_prompt: 'blurry, low quality',
    default_scheduler: 'ddim',
    vae_scaling_factor: VAE_SCALING_FACTOR,
    description: 'tiny random model for tests; images are noise',
  });
  // In the order diffusers writes it: the class, its version, then the settings.
  const { _class_name, ...schedulerSettings } = SD15_SCHEDULER_CONFIG;
  json('scheduler/scheduler_config.json', { _class_name, _diffusers_version: DIFFUSERS_VERSION, ...schedulerSettings });
  json('tokenizer/vocab.json', Object.fromEntries(tokenizer.vocab));
  files.set('tokenizer/merges.txt', Buffer.from(`#version: 0.2\n${tokenizer.merges.map((m) => m.join(' ')).join('\n')}\n`));
  // The special tokens in the forms SD 1.5's own tokenizer files use (objects and plain strings mixed).
  const addedToken = (content: string) => ({ content, lstrip: false, normalized: true, rstrip: false, single_word: false });
  json('tokenizer/tokenizer_config.json', {
    add_prefix_space: false,
    bos_token: { __type: 'AddedToken', ...addedToken(BOS) },
    do_lower_case: true,
    eos_token: { __type: 'AddedToken', ...addedToken(EOS) },
    errors: 'replace',
    model_max_length: MAX_LENGTH,
    pad_token: EOS,
    tokenizer_class: 'CLIPTokenizer',
    unk_token: { __type: 'AddedToken', ...addedToken(EOS) },
  });
  json('tokenizer/special_tokens_map.json', {
    bos_token: addedToken(BOS),
    eos_token: addedToken(EOS),
    pad_token: EOS,
    unk_token: addedToken(EOS),
  });
  files.set('text_encoder/model.onnx', textEncoder.model);
  files.set('unet/model.onnx', unet.model);
  files.set(`unet/${UNET_WEIGHTS_FILE}`, unet.externalData);
  files.set('vae_decoder/model.onnx', vaeDecoder.model);
  json('vae_decoder/config.json', {
    _class_name: 'AutoencoderKL',
    _diffusers_version: DIFFUSERS_VERSION,
    in_channels: 3,
    latent_channels: LATENT_CHANNELS,
    out_channels: 3,
    scaling_factor: VAE_SCALING_FACTOR,
  });
  return files;
}

// ---------------------------------------------------------------------------------------------
// Tokenizer

const BOS = '<|startoftext|>';
const EOS = '<|endoftext|>';

/**
 * A CLIP-style BPE vocabulary in CLIP's own order: the 256 byte symbols, the same with `</w>`, one
 * token per merge, then the two special tokens — so `<|endoftext|>` has the highest id, which the
 * text encoder relies on to find it, as CLIP's does. The byte table and BPE are the tokenizer's own,
 * so the merges written are the ones the shipped tokenizer applies.
 */
function clipTokenizer(words: string[]): { vocab: Map<string, number>; merges: [string, string][] } {
  // CLIP's vocabulary lists the byte symbols in bytes_to_unicode's order, which is by code point.
  const bytes = [...BYTE_SYMBOL].sort();
  const vocab = new Map<string, number>();
  const add = (token: string) => {
    if (!vocab.has(token)) vocab.set(token, vocab.size);
  };
  for (const symbol of bytes) add(symbol);
  for (const symbol of bytes) add(`${symbol}</w>`);
  // Each word gets merges of its two leading pieces until BPE yields it whole. New merges rank after
  // every earlier one, so words added before keep encoding as they did.
  const merges: [string, string][] = [];
  const ranks = new Map<string, number>();
  for (const word of words) {
    for (let pieces = bpe(byteSymbols(word), ranks); pieces.length > 1; pieces = bpe(byteSymbols(word), ranks)) {
      const merge: [string, string] = [pieces[0]!, pieces[1]!];
      ranks.set(merge.join(' '), merges.length);
      merges.push(merge);
      add(merge.join(''));
    }
  }
  add(BOS);
  add(EOS);
  return { vocab, merges };
}

// ---------------------------------------------------------------------------------------------
// Models

/**
 * CLIP's text encoder in miniature: token and position embeddings, one causal mixing layer (each
 * position averages itself and those before it, as CLIP's causal mask allows, so padding never
 * changes the prompt's tokens), an MLP block and a final LayerNorm; pooled at the end-of-text token.
 */
function textEncoderModel(random: WeightRandom, float: FloatFormat, vocabSize: number): BuiltModel {
  const g = new GraphBuilder(float, random);
  const embedded = g.op('Gather', [g.weight('embeddings.token_embedding.weight', [vocabSize, HIDDEN], 1), 'input_ids']);
  let x = g.op('Add', [embedded, g.weight('embeddings.position_embedding.weight', [MAX_LENGTH, HIDDEN], 0.5)]);
  const causalMean = new Float32Array(MAX_LENGTH * MAX_LENGTH);
  for (let i = 0; i < MAX_LENGTH; i++) for (let j = 0; j <= i; j++) causalMean[i * MAX_LENGTH + j] = 1 / (i + 1);
  x = g.op('Add', [x, g.op('MatMul', [g.floats('encoder.causal_mean', [MAX_LENGTH, MAX_LENGTH], causalMean), x])]);
  const hidden = g.op('Tanh', [g.linear('encoder.mlp.fc1', x, HIDDEN, 4 * HIDDEN)]);
  x = g.op('Add', [x, g.linear('encoder.mlp.fc2', hidden, 4 * HIDDEN, HIDDEN)]);
  const lastHidden = g.op(
    'LayerNormalization',
    [x, g.weight('final_layer_norm.weight', [HIDDEN], 0.1, 1), g.weight('final_layer_norm.bias', [HIDDEN], 0.1)],
    { axis: -1 },
    'last_hidden_state',
  );
  const eosPosition = g.op('ArgMax', ['input_ids'], { axis: 1, keepdims: 1 });
  const eosIndex = g.op('Unsqueeze', [eosPosition, g.int64s('axes_2', [2])]);
  const gatherIndex = g.op('Expand', [eosIndex, g.int64s('pooled_shape', [1, 1, HIDDEN])]);
  const pooled = g.op('GatherElements', [lastHidden, gatherIndex], { axis: 1 });
  g.op('Squeeze', [pooled, g.int64s('axes_1', [1])], {}, 'pooler_output');
  return g.model(
    [valueInfo('input_ids', DataType.INT32, ['batch', MAX_LENGTH])],
    [
      valueInfo('last_hidden_state', float.dataType, ['batch', MAX_LENGTH, HIDDEN]),
      valueInfo('pooler_output', float.dataType, ['batch', HIDDEN]),
    ],
  );
}

/**
 * A one-level UNet: conv in, plus a sinusoidal timestep embedding and the mean text conditioning,
 * both projected to channels and added per pixel, SiLU, conv out. The noise it predicts is its
 * input plus that, tanh-bounded: a denoiser for all-zero data, nudged. Random weights alone would
 * make every scheduler's latents grow step by step (±45 after 20 DDIM steps); with the skip they
 * end near ±4 as SD's do, whatever the scheduler, so images are not saturated.
 */
function unetModel(
  random: WeightRandom,
  float: FloatFormat,
  fixedBatch: boolean,
  timestepType: 'int64' | 'float32',
): BuiltModel {
  const g = new GraphBuilder(float, random, UNET_WEIGHTS_FILE);
  const h = g.conv('conv_in', 'sample', LATENT_CHANNELS, UNET_CHANNELS, 3);
  // diffusers' Timesteps frequencies: exp(-ln(10000) · i / half).
  const frequencies = Array.from({ length: TIME_FREQUENCIES }, (_, i) => Math.exp((-Math.log(10000) * i) / TIME_FREQUENCIES));
  const t = g.op('Unsqueeze', [g.op('Cast', ['timestep'], { to: float.dataType }), g.int64s('axes_1', [1])]);
  const angles = g.op('Mul', [t, g.floats('time_proj.frequencies', [1, TIME_FREQUENCIES], frequencies)]);
  const timeProjection = g.op('Concat', [g.op('Sin', [angles]), g.op('Cos', [angles])], { axis: 1 });
  const timeEmbedding = g.silu(g.linear('time_embedding.linear_1', timeProjection, 2 * TIME_FREQUENCIES, UNET_CHANNELS));
  const textMean = g.op('ReduceMean', ['encoder_hidden_states'], { axes: [1], keepdims: 0 });
  const conditioning = g.linear('text_projection', textMean, HIDDEN, UNET_CHANNELS);
  const perPixel = g.op('Unsqueeze', [g.op('Add', [timeEmbedding, conditioning]), g.int64s('axes_2_3', [2, 3])]);
  const mixed = g.silu(g.op('Add', [h, perPixel]));
  const correction = g.op('Tanh', [g.conv('conv_out', mixed, UNET_CHANNELS, LATENT_CHANNELS, 3)]);
  g.op('Add', ['sample', correction], {}, 'out_sample');
  const batch = fixedBatch ? 1 : 'batch';
  return g.model(
    [
      valueInfo('sample', float.dataType, [batch, LATENT_CHANNELS, 'height', 'width']),
      valueInfo('timestep', timestepType === 'int64' ? DataType.INT64 : DataType.FLOAT, [batch]),
      valueInfo('encoder_hidden_states', float.dataType, [batch, MAX_LENGTH, HIDDEN]),
    ],
    [valueInfo('out_sample', float.dataType, [batch, LATENT_CHANNELS, 'height', 'width'])],
  );
}

/**
 * The VAE decoder's shape in miniature: post-quant 1×1 conv, conv in, three nearest-neighbour ×2
 * upsamplings each followed by a conv (as diffusers' Upsample2D does), then the output norm, SiLU
 * and conv out to RGB as diffusers' Decoder ends, and a tanh. The norm keeps the image in tanh's
 * unsaturated range whatever the latents' scale.
 */
function vaeDecoderModel(random: WeightRandom, float: FloatFormat): BuiltModel {
  const g = new GraphBuilder(float, random);
  let x = g.conv('post_quant_conv', 'latent_sample', LATENT_CHANNELS, LATENT_CHANNELS, 1);
  x = g.conv('decoder.conv_in', x, LATENT_CHANNELS, VAE_CHANNELS, 3);
  // Resize's scales input is float32 whatever the model's precision.
  const doubled = g.float32s('upsample_scales', [1, 1, 2, 2]);
  for (let i = 0; i < 3; i++) {
    x = g.op('Resize', [x, '', doubled], { mode: 'nearest' });
    x = g.silu(g.conv(`decoder.up_blocks.${i}.upsamplers.0.conv`, x, VAE_CHANNELS, VAE_CHANNELS, 3));
  }
  const normalized = g.op('InstanceNormalization', [
    x,
    g.weight('decoder.conv_norm_out.weight', [VAE_CHANNELS], 0.1, 1),
    g.weight('decoder.conv_norm_out.bias', [VAE_CHANNELS], 0.1),
  ]);
  g.op('Tanh', [g.conv('decoder.conv_out', g.silu(normalized), VAE_CHANNELS, 3, 3)], {}, 'sample');
  return g.model(
    [valueInfo('latent_sample', float.dataType, ['batch', LATENT_CHANNELS, 'height', 'width'])],
    [valueInfo('sample', float.dataType, ['batch', 3, 'image_height', 'image_width'])],
  );
}

// ---------------------------------------------------------------------------------------------
// ONNX graph building

interface FloatFormat {
  dataType: number;
  encode(values: ArrayLike<number>): Uint8Array;
}

const FLOAT32: FloatFormat = {
  dataType: DataType.FLOAT,
  encode(values) {
    const out = Buffer.alloc(values.length * 4);
    for (let i = 0; i < values.length; i++) out.writeFloatLE(values[i]!, i * 4);
    return out;
  },
};

const FLOAT16: FloatFormat = {
  dataType: DataType.FLOAT16,
  encode(values) {
    const out = Buffer.alloc(values.length * 2);
    for (let i = 0; i < values.length; i++) out.writeUInt16LE(toHalfBits(values[i]!), i * 2);
    return out;
  },
};

/** mulberry32 plus Box–Muller: small, seedable, and the same numbers on every platform. */
class WeightRandom {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  private uniform(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  normal(): number {
    return Math.sqrt(-2 * Math.log(1 - this.uniform())) * Math.cos(2 * Math.PI * this.uniform());
  }
}

type Dim = number | string;

function valueInfo(name: string, elemType: number, dims: Dim[]): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

interface BuiltModel {
  model: Uint8Array;
  /** The weights kept beside the model; empty when they are inside it. */
  externalData: Uint8Array;
}

/** Builds one graph; float weights go to `externalFile` (beside model.onnx) when one is given. */
class GraphBuilder {
  private readonly nodes: onnxProto.onnx.INodeProto[] = [];
  private readonly initializers = new Map<string, onnxProto.onnx.ITensorProto>();
  private readonly externalChunks: Uint8Array[] = [];
  private externalLength = 0;

  constructor(
    private readonly float: FloatFormat,
    private readonly random: WeightRandom,
    private readonly externalFile?: string,
  ) {}

  /** A learned tensor: `mean` plus normal noise of standard deviation `std`. */
  weight(name: string, dims: number[], std: number, mean = 0): string {
    const values = new Float32Array(dims.reduce((a, b) => a * b, 1));
    for (let i = 0; i < values.length; i++) values[i] = mean + std * this.random.normal();
    return this.floats(name, dims, values);
  }

  /** A float tensor in the model's precision; external when the graph keeps its weights apart. */
  floats(name: string, dims: number[], values: ArrayLike<number>): string {
    const bytes = this.float.encode(values);
    if (this.externalFile === undefined) return this.initializer({ name, dims, dataType: this.float.dataType, rawData: bytes });
    const offset = this.externalLength;
    this.externalChunks.push(bytes);
    this.externalLength += bytes.length;
    return this.initializer({
      name,
      dims,
      dataType: this.float.dataType,
      dataLocation: DataLocation.EXTERNAL,
      externalData: [
        { key: 'location', value: this.externalFile },
        { key: 'offset', value: String(offset) },
        { key: 'length', value: String(bytes.length) },
      ],
    });
  }

  /** Always inline, like the small tensors exporters keep below their external-data size threshold. */
  float32s(name: string, values: number[]): string {
    return this.initializer({ name, dims: [values.length], dataType: DataType.FLOAT, rawData: FLOAT32.encode(values) });
  }

  int64s(name: string, values: number[]): string {
    return this.initializer({ name, dims: [values.length], dataType: DataType.INT64, int64Data: values });
  }

  op(type: string, inputs: string[], attributes: Record<string, number | number[] | string> = {}, output?: string): string {
    const name = `${type}_${this.nodes.length}`;
    const result = output ?? name;
    this.nodes.push({
      name,
      opType: type,
      input: inputs,
      output: [result],
      attribute: Object.entries(attributes).map(([key, value]) =>
        typeof value === 'string'
          ? { name: key, type: AttributeType.STRING, s: Buffer.from(value) }
          : Array.isArray(value)
            ? { name: key, type: AttributeType.INTS, ints: value }
            : { name: key, type: AttributeType.INT, i: value },
      ),
    });
    return result;
  }

  /** x·W + b with W of shape [inFeatures, outFeatures], scaled so activations keep unit size. */
  linear(name: string, x: string, inFeatures: number, outFeatures: number): string {
    const w = this.weight(`${name}.weight`, [inFeatures, outFeatures], 1 / Math.sqrt(inFeatures));
    return this.op('Add', [this.op('MatMul', [x, w]), this.weight(`${name}.bias`, [outFeatures], 0.1)]);
  }

  /** A same-size convolution (square kernel, zero padding). */
  conv(name: string, x: string, inChannels: number, outChannels: number, kernel: number): string {
    const fanIn = inChannels * kernel * kernel;
    const w = this.weight(`${name}.weight`, [outChannels, inChannels, kernel, kernel], 1 / Math.sqrt(fanIn));
    const b = this.weight(`${name}.bias`, [outChannels], 0.1);
    const pad = (kernel - 1) / 2;
    return this.op('Conv', [x, w, b], { kernel_shape: [kernel, kernel], pads: [pad, pad, pad, pad] });
  }

  silu(x: string): string {
    return this.op('Mul', [x, this.op('Sigmoid', [x])]);
  }

  model(inputs: onnxProto.onnx.IValueInfoProto[], outputs: onnxProto.onnx.IValueInfoProto[]): BuiltModel {
    const model = onnx.ModelProto.encode({
      irVersion: IR_VERSION,
      opsetImport: [{ domain: '', version: OPSET }],
      producerName: 'itemgen tiny-model',
      graph: {
        name: 'tiny',
        node: this.nodes,
        initializer: [...this.initializers.values()],
        input: inputs,
        output: outputs,
      },
    }).finish();
    return { model, externalData: Buffer.concat(this.externalChunks) };
  }

  /** Shared constants (axes) are declared once however often they are used. */
  private initializer(tensor: onnxProto.onnx.ITensorProto & { name: string }): string {
    if (!this.initializers.has(tensor.name)) this.initializers.set(tensor.name, tensor);
    return tensor.name;
  }
}
