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
import { folderFiles, LATENT_CHANNELS, MAX_LENGTH, tokenizerVocabulary, writeFiles } from './generated-folder.ts';
import {
  DataType,
  externalDataBytes,
  FLOAT16,
  FLOAT32,
  GraphBuilder,
  valueInfo,
  WeightRandom,
  type BuiltModel,
  type FloatFormat,
} from './onnx-graph.ts';

export { SD15_SCHEDULER_CONFIG } from './generated-folder.ts';

export interface TinyModelOptions {
  /** Seeds the weights; the same seed gives byte-identical files. */
  seed?: number;
  /** float16 weights, inputs and outputs, as fp16 GPU exports are (input_ids and timestep keep their types). */
  fp16?: boolean;
  /** UNet batch dimension fixed to 1, as some exports have it: the pipeline must run it per image. */
  fixedBatch?: boolean;
  timestepType?: 'int64' | 'float32';
}

/** Text hidden size, which is also the UNet's cross-attention dimension. */
const HIDDEN = 32;
const UNET_CHANNELS = 32;
const VAE_CHANNELS = 8;
/** Half the size of the sinusoidal timestep embedding. */
const TIME_FREQUENCIES = 16;
const UNET_WEIGHTS_FILE = 'weights.pb';
const NAMES = { producer: 'itemgen tiny-model', graph: 'tiny' };

/**
 * Writes the model folder (creating it) and resolves to the relative paths written. Weights depend
 * only on the seed, so the fixed-batch and float-timestep variants compute the same function.
 */
export async function writeTinyModel(dir: string, options: TinyModelOptions = {}): Promise<string[]> {
  return writeFiles(dir, tinyModelFiles(options));
}

function tinyModelFiles(options: TinyModelOptions): Map<string, Uint8Array> {
  const random = new WeightRandom(options.seed ?? 0);
  const float = options.fp16 ? FLOAT16 : FLOAT32;
  const textEncoder = textEncoderModel(random, float, tokenizerVocabulary().size);
  const unet = unetModel(random, float, options.fixedBatch ?? false, options.timestepType ?? 'int64');
  const vaeDecoder = vaeDecoderModel(random, float);

  const files = folderFiles('tiny random model for tests; images are noise');
  files.set('text_encoder/model.onnx', textEncoder.model);
  files.set('unet/model.onnx', unet.model);
  files.set(`unet/${UNET_WEIGHTS_FILE}`, externalDataBytes(unet));
  files.set('vae_decoder/model.onnx', vaeDecoder.model);
  return files;
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
    NAMES,
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
  const g = new GraphBuilder(float, random, { externalFile: UNET_WEIGHTS_FILE });
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
    NAMES,
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
    NAMES,
  );
}
