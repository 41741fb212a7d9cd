// Writes a model folder with Stable Diffusion 1.5's architecture and seeded random weights: the
// CLIP ViT-L/14 text encoder, SD 1.5's UNet2DConditionModel and the VAE decoder, layer for layer as
// diffusers' configs build them, in the diffusers ONNX layout with the inputs, outputs, dtypes and
// dynamic dimensions of Optimum's export. No real weights can be downloaded here; this model has
// their size and their cost, so memory, load and hash times and seconds per step measured on it
// are what the real model's would be (its images are noise).
//
// `width` multiplies every channel count (rounded to a multiple of GroupNorm's 32 groups, the
// text width to a multiple of 96 so its 12 heads stay whole): 1 is SD 1.5 itself (1.03 B
// parameters, 4.1 GB in fp32), 0.125 a model of the same graph that tests build in a second.
// sd15ParameterCounts builds the same graphs without making a weight, so a count checked at width
// 1 is the count of what width 1 would write.
//
// Weights are uniform with a variance of 1 / fan-in, and every residual branch's last layer has
// half that gain: each branch starts from a norm, so the residual streams grow by a bounded sum,
// not a product, and stay finite in fp16 through the UNet's 22 ResNet blocks and 16 transformers. Every graph keeps its weights in an external data
// file (the UNet's are 3.4 GB in fp32, beyond protobuf's 2 GB), written one tensor at a time.
import { join } from 'node:path';
import { diffusersConfig, folderFiles, jsonBytes, LATENT_CHANNELS, MAX_LENGTH, writeFiles } from './generated-folder.ts';
import {
  DataType,
  FLOAT16,
  FLOAT32,
  GraphBuilder,
  valueInfo,
  WeightRandom,
  writeExternalData,
  type BuiltModel,
  type FloatFormat,
} from './onnx-graph.ts';

export interface Sd15ModelOptions {
  /** float16 weights, inputs and outputs (input_ids and timestep keep their types), as Optimum's fp16 export. */
  fp16?: boolean;
  /** Channel-width multiplier, in (0, 1]: 1 is SD 1.5's real size. */
  width?: number;
  /** Seeds the weights; the same seed and options give byte-identical files. */
  seed?: number;
}

export interface Sd15ParameterCounts {
  textEncoder: number;
  unet: number;
  /** With post_quant_conv, which diffusers' ONNX export puts in the decoder. */
  vaeDecoder: number;
}

/** Optimum's name for the external data file beside each model.onnx. */
export const SD15_WEIGHTS_FILE = 'model.onnx_data';
const ALIGN = 64 * 1024;
const GROUPS = 32;
/** Residual branches end at half gain (see the header). */
const RESIDUAL_GAIN = 0.5;
/** CLIP's vocabulary size: the token embedding has this many rows whatever the generated tokenizer holds. */
const CLIP_VOCABULARY = 49408;

/** The layer widths at one width multiplier (diffusers' and transformers' configs at 1). */
interface Sd15Config {
  text: { hidden: number; layers: number; heads: number; mlp: number };
  unet: { blocks: number[]; layersPerBlock: number; heads: number; timeEmbedding: number; crossAttention: number };
  vae: { blocks: number[]; layersPerBlock: number };
}

function sd15Config(width: number): Sd15Config {
  if (!(width > 0 && width <= 1)) throw new RangeError(`width must be in (0, 1], got ${width}`);
  const scaled = (channels: number, multiple: number) => Math.max(multiple, Math.round((channels * width) / multiple) * multiple);
  const hidden = scaled(768, 96);
  const blocks = [320, 640, 1280, 1280].map((c) => scaled(c, GROUPS));
  return {
    text: { hidden, layers: 12, heads: 12, mlp: 4 * hidden },
    unet: { blocks, layersPerBlock: 2, heads: 8, timeEmbedding: 4 * blocks[0]!, crossAttention: hidden },
    vae: { blocks: [128, 256, 512, 512].map((c) => scaled(c, GROUPS)), layersPerBlock: 2 },
  };
}

/**
 * Writes the model folder (creating it) and resolves to the relative paths written. Each graph's
 * weights are made and written one tensor at a time, so memory holds one tensor, not the model.
 */
export async function writeSd15Model(dir: string, options: Sd15ModelOptions = {}): Promise<string[]> {
  const config = sd15Config(options.width ?? 1);
  const float = options.fp16 ? FLOAT16 : FLOAT32;
  const seed = options.seed ?? 0;
  const files = folderFiles(`Stable Diffusion 1.5's architecture at width ${options.width ?? 1}, seeded random weights (seed ${seed}); images are noise`);
  files.set('text_encoder/config.json', jsonBytes(textEncoderConfig(config)));
  files.set('unet/config.json', unetConfig(config));
  const written = await writeFiles(dir, files);
  // One weight stream per graph, so each graph's weights depend on the seed alone.
  const graphs: [string, (random: WeightRandom) => BuiltModel][] = [
    ['text_encoder', (random) => textEncoderModel(builder(float, random), config)],
    ['unet', (random) => unetModel(builder(float, random), config)],
    ['vae_decoder', (random) => vaeDecoderModel(builder(float, random), config)],
  ];
  for (const [index, [sub, build]] of graphs.entries()) {
    const built = build(new WeightRandom(seed * 3 + index));
    written.push(...(await writeFiles(dir, new Map([[`${sub}/model.onnx`, built.model]]))));
    await writeExternalData(join(dir, sub, SD15_WEIGHTS_FILE), built);
    written.push(`${sub}/${SD15_WEIGHTS_FILE}`);
  }
  return written;
}

/** The learned parameters of each graph at `width`, counted from the graphs themselves without making a weight. */
export function sd15ParameterCounts(width = 1): Sd15ParameterCounts {
  const config = sd15Config(width);
  const g = () => builder(FLOAT32, new WeightRandom(0));
  return {
    textEncoder: textEncoderModel(g(), config).parameters,
    unet: unetModel(g(), config).parameters,
    vaeDecoder: vaeDecoderModel(g(), config).parameters,
  };
}

const builder = (float: FloatFormat, random: WeightRandom) =>
  new GraphBuilder(float, random, { externalFile: SD15_WEIGHTS_FILE, deferred: true, align: ALIGN });

const names = (graph: string) => ({ producer: 'itemgen sd15-model', graph });

function textEncoderConfig(config: Sd15Config): Record<string, unknown> {
  const { hidden, layers, heads, mlp } = config.text;
  return {
    architectures: ['CLIPTextModel'],
    hidden_act: 'quick_gelu',
    hidden_size: hidden,
    intermediate_size: mlp,
    layer_norm_eps: 1e-5,
    max_position_embeddings: MAX_LENGTH,
    model_type: 'clip_text_model',
    num_attention_heads: heads,
    num_hidden_layers: layers,
    projection_dim: hidden,
    vocab_size: CLIP_VOCABULARY,
  };
}

function unetConfig(config: Sd15Config): Uint8Array {
  const { blocks, layersPerBlock, heads, crossAttention } = config.unet;
  return diffusersConfig('UNet2DConditionModel', {
    attention_head_dim: heads,
    block_out_channels: blocks,
    cross_attention_dim: crossAttention,
    down_block_types: ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'],
    in_channels: LATENT_CHANNELS,
    layers_per_block: layersPerBlock,
    norm_eps: 1e-5,
    norm_num_groups: GROUPS,
    out_channels: LATENT_CHANNELS,
    up_block_types: ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'],
    use_linear_projection: false,
  });
}

// ---------------------------------------------------------------------------------------------
// Layers (diffusers' and transformers' modules, by their state-dict names)

/** torch.nn.GroupNorm as exporters write it: InstanceNormalization over [batch, groups, rest], then the affine. */
function groupNorm(g: GraphBuilder, name: string, x: string, channels: number, epsilon: number): string {
  const grouped = g.op('Reshape', [x, g.int64s('group_norm.shape', [0, GROUPS, -1])]);
  const ones = g.constant('group_norm.ones', [GROUPS], new Array<number>(GROUPS).fill(1));
  const zeros = g.constant('group_norm.zeros', [GROUPS], new Array<number>(GROUPS).fill(0));
  const normalized = g.op('InstanceNormalization', [grouped, ones, zeros], { epsilon });
  const restored = g.op('Reshape', [normalized, g.op('Shape', [x])]);
  const scaled = g.op('Mul', [restored, g.weight(`${name}.weight`, [channels, 1, 1], 0.1, 1)]);
  return g.op('Add', [scaled, g.weight(`${name}.bias`, [channels, 1, 1], 0.1)]);
}

function layerNorm(g: GraphBuilder, name: string, x: string, size: number): string {
  return g.op('LayerNormalization', [x, g.weight(`${name}.weight`, [size], 0.1, 1), g.weight(`${name}.bias`, [size], 0.1)], {
    axis: -1,
    epsilon: 1e-5,
  });
}

interface AttentionSpec {
  dim: number;
  contextDim: number;
  heads: number;
  /** The q, k, v and output projections' names. */
  projections: [string, string, string, string];
  /** Whether q, k and v have biases (CLIP's and the VAE's do, the UNet's do not). */
  qkvBias: boolean;
  /** Added to the scores (CLIP's causal mask). */
  mask?: string;
}

/** Multi-head scaled dot-product attention of x [batch, n, dim] over context [batch, m, contextDim]. */
function attention(g: GraphBuilder, spec: AttentionSpec, x: string, context: string): string {
  const { dim, contextDim, heads } = spec;
  const headDim = dim / heads;
  const [qName, kName, vName, outName] = spec.projections;
  const bias = { bias: spec.qkvBias };
  const scale = g.constant(`attention.scale_${headDim}`, [], [1 / Math.sqrt(headDim)]);
  const q = g.op('Mul', [g.linear(qName, x, dim, dim, bias), scale]);
  const k = g.linear(kName, context, contextDim, dim, bias);
  const v = g.linear(vName, context, contextDim, dim, bias);
  const split = g.int64s(`attention.heads_${heads}x${headDim}`, [0, 0, heads, headDim]);
  const perHead = (t: string, perm: number[]) => g.op('Transpose', [g.op('Reshape', [t, split])], { perm });
  let scores = g.op('MatMul', [perHead(q, [0, 2, 1, 3]), perHead(k, [0, 2, 3, 1])]);
  if (spec.mask) scores = g.op('Add', [scores, spec.mask]);
  const mixed = g.op('MatMul', [g.op('Softmax', [scores], { axis: -1 }), perHead(v, [0, 2, 1, 3])]);
  const merged = g.op('Reshape', [g.op('Transpose', [mixed], { perm: [0, 2, 1, 3] }), g.int64s(`attention.merge_${dim}`, [0, 0, dim])]);
  return g.linear(outName, merged, dim, dim, { gain: RESIDUAL_GAIN });
}

/** [batch, c, h, w] → [batch, h·w, c], and back to `like`'s shape. */
const toSequence = (g: GraphBuilder, x: string, channels: number) =>
  g.op('Transpose', [g.op('Reshape', [x, g.int64s(`sequence_${channels}`, [0, channels, -1])])], { perm: [0, 2, 1] });
const toImage = (g: GraphBuilder, x: string, like: string) => g.op('Reshape', [g.op('Transpose', [x], { perm: [0, 2, 1] }), g.op('Shape', [like])]);

/** diffusers' ResnetBlock2D: norm, SiLU, conv, the time embedding added (UNet only), norm, SiLU, conv, plus the shortcut. */
function resnet(g: GraphBuilder, name: string, x: string, inChannels: number, outChannels: number, epsilon: number, time?: { embedding: string; size: number }): string {
  let h = g.conv(`${name}.conv1`, g.silu(groupNorm(g, `${name}.norm1`, x, inChannels, epsilon)), inChannels, outChannels, 3);
  if (time) {
    const projected = g.linear(`${name}.time_emb_proj`, time.embedding, time.size, outChannels);
    h = g.op('Add', [h, g.op('Unsqueeze', [projected, g.int64s('axes_2_3', [2, 3])])]);
  }
  h = g.conv(`${name}.conv2`, g.silu(groupNorm(g, `${name}.norm2`, h, outChannels, epsilon)), outChannels, outChannels, 3, { gain: RESIDUAL_GAIN });
  const shortcut = inChannels === outChannels ? x : g.conv(`${name}.conv_shortcut`, x, inChannels, outChannels, 1);
  return g.op('Add', [shortcut, h]);
}

/** diffusers' Transformer2DModel with one BasicTransformerBlock: self-attention, cross-attention, GEGLU feed-forward. */
function transformer(g: GraphBuilder, name: string, x: string, channels: number, heads: number, context: { states: string; size: number }): string {
  const projected = g.conv(`${name}.proj_in`, groupNorm(g, `${name}.norm`, x, channels, 1e-6), channels, channels, 1);
  let h = toSequence(g, projected, channels);
  const block = `${name}.transformer_blocks.0`;
  const projections = (attn: string): AttentionSpec['projections'] => [`${attn}.to_q`, `${attn}.to_k`, `${attn}.to_v`, `${attn}.to_out.0`];
  const normed1 = layerNorm(g, `${block}.norm1`, h, channels);
  h = g.op('Add', [h, attention(g, { dim: channels, contextDim: channels, heads, projections: projections(`${block}.attn1`), qkvBias: false }, normed1, normed1)]);
  const normed2 = layerNorm(g, `${block}.norm2`, h, channels);
  const cross = { dim: channels, contextDim: context.size, heads, projections: projections(`${block}.attn2`), qkvBias: false };
  h = g.op('Add', [h, attention(g, cross, normed2, context.states)]);
  // GEGLU: one projection to twice the inner width, its second half through GELU gating the first.
  const inner = 4 * channels;
  const both = g.linear(`${block}.ff.net.0.proj`, layerNorm(g, `${block}.norm3`, h, channels), channels, 2 * inner);
  const half = (start: number) => g.op('Slice', [both, g.int64s(`slice_${start}`, [start]), g.int64s(`slice_${start + inner}`, [start + inner]), g.int64s('axes_last', [-1])]);
  const gated = g.op('Mul', [half(0), gelu(g, half(inner))]);
  h = g.op('Add', [h, g.linear(`${block}.ff.net.2`, gated, inner, channels, { gain: RESIDUAL_GAIN })]);
  const out = g.conv(`${name}.proj_out`, toImage(g, h, x), channels, channels, 1, { gain: RESIDUAL_GAIN });
  return g.op('Add', [out, x]);
}

/** Exact GELU, 0.5·x·(1 + erf(x/√2)), as torch.onnx writes it at opset 17 (which has no Gelu). */
function gelu(g: GraphBuilder, x: string): string {
  const erf = g.op('Erf', [g.op('Mul', [x, g.constant('gelu.rsqrt2', [], [Math.SQRT1_2])])]);
  return g.op('Mul', [g.op('Mul', [x, g.constant('gelu.half', [], [0.5])]), g.op('Add', [erf, g.constant('gelu.one', [], [1])])]);
}

/** Nearest-neighbour ×2 then a conv, as diffusers' Upsample2D. */
function upsample(g: GraphBuilder, name: string, x: string, channels: number): string {
  // Resize's scales input is float32 whatever the model's precision.
  const doubled = g.op('Resize', [x, '', g.float32s('upsample_scales', [1, 1, 2, 2])], { mode: 'nearest' });
  return g.conv(`${name}.conv`, doubled, channels, channels, 3);
}

// ---------------------------------------------------------------------------------------------
// Models

/**
 * transformers' CLIPTextModel (ViT-L/14's text tower): token and position embeddings, 12 pre-norm
 * layers of causal self-attention and a quick-GELU MLP, the final LayerNorm; pooled at the
 * end-of-text token (the highest id, found by argmax as CLIP does). The sequence length is dynamic
 * as Optimum exports it: positions and mask are sliced to it.
 */
function textEncoderModel(g: GraphBuilder, config: Sd15Config): BuiltModel {
  const { hidden, layers, heads, mlp } = config.text;
  const sequence = g.op('Shape', ['input_ids'], { start: 1, end: 2 });
  const zero = g.int64s('zero', [0]);
  const tokens = g.op('Gather', [g.weight('text_model.embeddings.token_embedding.weight', [CLIP_VOCABULARY, hidden], 1), 'input_ids']);
  const positionTable = g.weight('text_model.embeddings.position_embedding.weight', [MAX_LENGTH, hidden], 1);
  let x = g.op('Add', [tokens, g.op('Slice', [positionTable, zero, sequence, zero])]);
  // CLIP's causal mask: the dtype's lowest value above the diagonal, as transformers fills it.
  const lowest = g.float.dataType === DataType.FLOAT16 ? -65504 : -3.4028234663852886e38;
  const mask = new Float32Array(MAX_LENGTH * MAX_LENGTH);
  for (let i = 0; i < MAX_LENGTH; i++) for (let j = i + 1; j < MAX_LENGTH; j++) mask[i * MAX_LENGTH + j] = lowest;
  const square = g.op('Concat', [sequence, sequence], { axis: 0 });
  const causal = g.op('Slice', [g.constant('causal_mask', [MAX_LENGTH, MAX_LENGTH], mask), g.int64s('zeros_2', [0, 0]), square, g.int64s('axes_0_1', [0, 1])]);
  for (let i = 0; i < layers; i++) {
    const layer = `text_model.encoder.layers.${i}`;
    const attn = `${layer}.self_attn`;
    const normed = layerNorm(g, `${layer}.layer_norm1`, x, hidden);
    const spec: AttentionSpec = {
      dim: hidden,
      contextDim: hidden,
      heads,
      projections: [`${attn}.q_proj`, `${attn}.k_proj`, `${attn}.v_proj`, `${attn}.out_proj`],
      qkvBias: true,
      mask: causal,
    };
    x = g.op('Add', [x, attention(g, spec, normed, normed)]);
    const up = g.linear(`${layer}.mlp.fc1`, layerNorm(g, `${layer}.layer_norm2`, x, hidden), hidden, mlp);
    // quick_gelu: x·sigmoid(1.702·x).
    const activated = g.op('Mul', [up, g.op('Sigmoid', [g.op('Mul', [up, g.constant('quick_gelu.scale', [], [1.702])])])]);
    x = g.op('Add', [x, g.linear(`${layer}.mlp.fc2`, activated, mlp, hidden, { gain: RESIDUAL_GAIN })]);
  }
  const lastHidden = g.op(
    'LayerNormalization',
    [x, g.weight('text_model.final_layer_norm.weight', [hidden], 0.1, 1), g.weight('text_model.final_layer_norm.bias', [hidden], 0.1)],
    { axis: -1, epsilon: 1e-5 },
    'last_hidden_state',
  );
  const eosPosition = g.op('ArgMax', ['input_ids'], { axis: 1, keepdims: 1 });
  const eosIndex = g.op('Expand', [g.op('Unsqueeze', [eosPosition, g.int64s('axes_2', [2])]), g.int64s('pooled_shape', [1, 1, hidden])]);
  g.op('Squeeze', [g.op('GatherElements', [lastHidden, eosIndex], { axis: 1 }), g.int64s('axes_1', [1])], {}, 'pooler_output');
  const float = g.float.dataType;
  return g.model(
    [valueInfo('input_ids', DataType.INT32, ['batch_size', 'sequence_length'])],
    [
      valueInfo('last_hidden_state', float, ['batch_size', 'sequence_length', hidden]),
      valueInfo('pooler_output', float, ['batch_size', hidden]),
    ],
    names('text_encoder'),
  );
}

/**
 * diffusers' UNet2DConditionModel as SD 1.5 configures it: the sinusoidal timestep embedding
 * (flip_sin_to_cos, in float32 as diffusers computes it) through linear–SiLU–linear, conv_in, three
 * CrossAttnDownBlock2D and a DownBlock2D, UNetMidBlock2DCrossAttn, an UpBlock2D and three
 * CrossAttnUpBlock2D (each resnet taking the matching down-path output), norm, SiLU, conv_out.
 */
function unetModel(g: GraphBuilder, config: Sd15Config): BuiltModel {
  const { blocks, layersPerBlock, heads, timeEmbedding, crossAttention } = config.unet;
  const float = g.float.dataType;
  const eps = 1e-5;
  const half = blocks[0]! / 2;
  const frequencies = Array.from({ length: half }, (_, i) => Math.exp((-Math.log(10000) * i) / half));
  const t = g.op('Unsqueeze', [g.op('Cast', ['timestep'], { to: DataType.FLOAT }), g.int64s('axes_1', [1])]);
  const angles = g.op('Mul', [t, g.float32s('time_proj.frequencies', frequencies)]);
  let projection = g.op('Concat', [g.op('Cos', [angles]), g.op('Sin', [angles])], { axis: 1 });
  if (float !== DataType.FLOAT) projection = g.op('Cast', [projection], { to: float });
  const embedded = g.linear('time_embedding.linear_2', g.silu(g.linear('time_embedding.linear_1', projection, blocks[0]!, timeEmbedding)), timeEmbedding, timeEmbedding);
  // Every resnet applies SiLU to the embedding first; one node serves them all.
  const time = { embedding: g.silu(embedded), size: timeEmbedding };
  const context = { states: 'encoder_hidden_states', size: crossAttention };

  let h = g.conv('conv_in', 'sample', LATENT_CHANNELS, blocks[0]!, 3);
  const skips: [string, number][] = [[h, blocks[0]!]];
  let channels = blocks[0]!;
  for (const [i, out] of blocks.entries()) {
    const attended = i < blocks.length - 1;
    for (let j = 0; j < layersPerBlock; j++) {
      h = resnet(g, `down_blocks.${i}.resnets.${j}`, h, channels, out, eps, time);
      channels = out;
      if (attended) h = transformer(g, `down_blocks.${i}.attentions.${j}`, h, out, heads, context);
      skips.push([h, out]);
    }
    if (i < blocks.length - 1) {
      h = g.conv(`down_blocks.${i}.downsamplers.0.conv`, h, out, out, 3, { stride: 2 });
      skips.push([h, out]);
    }
  }
  h = resnet(g, 'mid_block.resnets.0', h, channels, channels, eps, time);
  h = transformer(g, 'mid_block.attentions.0', h, channels, heads, context);
  h = resnet(g, 'mid_block.resnets.1', h, channels, channels, eps, time);
  const reversed = [...blocks].reverse();
  for (const [i, out] of reversed.entries()) {
    const attended = i > 0;
    for (let j = 0; j <= layersPerBlock; j++) {
      const [skip, skipChannels] = skips.pop()!;
      const name = `up_blocks.${i}.resnets.${j}`;
      h = resnet(g, name, g.op('Concat', [h, skip], { axis: 1 }), channels + skipChannels, out, eps, time);
      channels = out;
      if (attended) h = transformer(g, `up_blocks.${i}.attentions.${j}`, h, out, heads, context);
    }
    if (i < reversed.length - 1) h = upsample(g, `up_blocks.${i}.upsamplers.0`, h, out);
  }
  h = g.silu(groupNorm(g, 'conv_norm_out', h, channels, eps));
  g.op('Identity', [g.conv('conv_out', h, channels, LATENT_CHANNELS, 3)], {}, 'out_sample');
  return g.model(
    [
      valueInfo('sample', float, ['batch_size', LATENT_CHANNELS, 'height', 'width']),
      valueInfo('timestep', DataType.INT64, ['steps']),
      valueInfo('encoder_hidden_states', float, ['batch_size', 'sequence_length', crossAttention]),
    ],
    [valueInfo('out_sample', float, ['batch_size', LATENT_CHANNELS, 'height', 'width'])],
    names('unet'),
  );
}

/**
 * diffusers' AutoencoderKL decoder as SD 1.5 configures it, with post_quant_conv before it as the
 * ONNX export has it: conv_in, the mid block (resnet, single-head attention, resnet), four up
 * blocks of three resnets each (the first three upsampling), norm, SiLU, conv_out to RGB.
 */
function vaeDecoderModel(g: GraphBuilder, config: Sd15Config): BuiltModel {
  const { blocks, layersPerBlock } = config.vae;
  const eps = 1e-6;
  const reversed = [...blocks].reverse();
  let channels = reversed[0]!;
  let h = g.conv('post_quant_conv', 'latent_sample', LATENT_CHANNELS, LATENT_CHANNELS, 1);
  h = g.conv('decoder.conv_in', h, LATENT_CHANNELS, channels, 3);
  h = resnet(g, 'decoder.mid_block.resnets.0', h, channels, channels, eps);
  const attn = 'decoder.mid_block.attentions.0';
  const sequence = toSequence(g, groupNorm(g, `${attn}.group_norm`, h, channels, eps), channels);
  const spec: AttentionSpec = {
    dim: channels,
    contextDim: channels,
    heads: 1,
    projections: [`${attn}.to_q`, `${attn}.to_k`, `${attn}.to_v`, `${attn}.to_out.0`],
    qkvBias: true,
  };
  h = g.op('Add', [toImage(g, attention(g, spec, sequence, sequence), h), h]);
  h = resnet(g, 'decoder.mid_block.resnets.1', h, channels, channels, eps);
  for (const [i, out] of reversed.entries()) {
    for (let j = 0; j <= layersPerBlock; j++) {
      h = resnet(g, `decoder.up_blocks.${i}.resnets.${j}`, h, channels, out, eps);
      channels = out;
    }
    if (i < reversed.length - 1) h = upsample(g, `decoder.up_blocks.${i}.upsamplers.0`, h, out);
  }
  h = g.silu(groupNorm(g, 'decoder.conv_norm_out', h, channels, eps));
  g.op('Identity', [g.conv('decoder.conv_out', h, channels, 3, 3)], {}, 'sample');
  const float = g.float.dataType;
  return g.model(
    [valueInfo('latent_sample', float, ['batch_size', LATENT_CHANNELS, 'latent_height', 'latent_width'])],
    [valueInfo('sample', float, ['batch_size', 3, 'latent_height * 8', 'latent_width * 8'])],
    names('vae_decoder'),
  );
}
