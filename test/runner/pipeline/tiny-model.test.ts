// The generated tiny model folder: layout, model signatures as onnxruntime sees them, that every
// UNet input matters, determinism per seed, and the fp16 / fixed-batch / float-timestep variants.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import onnxProto from 'onnx-proto';
import ort from 'onnxruntime-node';
import { halfBits, halfTensor } from '../../../src/runner/pipeline/tensors.ts';
import { writeTinyModel, type TinyModelOptions } from '../../../src/runner/pipeline/tiny-model.ts';

const { onnx } = onnxProto;
const HIDDEN = 32;

const root = await fs.mkdtemp(path.join(os.tmpdir(), 'itemgen-tiny-model-'));
let written = 0;
const write = async (options?: TinyModelOptions) => {
  const dir = path.join(root, `model-${written++}`);
  const files = await writeTinyModel(dir, options);
  return { dir, files };
};
const open = (dir: string, model: string) => ort.InferenceSession.create(path.join(dir, model, 'model.onnx'));

type Signature = Record<string, [type: string, shape: readonly (number | string)[]]>;
const signature = (metadata: readonly ort.InferenceSession.ValueMetadata[]): Signature =>
  Object.fromEntries(metadata.map((m) => [m.name, m.isTensor ? [m.type, m.shape] : ['non-tensor', []]]));

const random = (size: number, seed: number) => Float32Array.from({ length: size }, (_, i) => Math.sin(seed * 1000 + i * 12.9898) * 2);
const float = (dims: number[], seed: number) => new ort.Tensor('float32', random(dims.reduce((a, b) => a * b), seed), dims);
const timesteps = (...values: number[]) => new ort.Tensor('int64', BigInt64Array.from(values.map(BigInt)), [values.length]);
const allFinite = (data: ArrayLike<number>) => Array.from(data).every(Number.isFinite);
const sameData = (a: ort.Tensor, b: ort.Tensor) => Buffer.from((a.data as Float32Array).buffer).equals(Buffer.from((b.data as Float32Array).buffer));

/** CLIP-style ids: start, a few prompt tokens, then end-of-text padding to 77. */
const inputIds = (vocab: Record<string, number>, words: string[]) => {
  const ids = new Int32Array(77).fill(vocab['<|endoftext|>']!);
  ids[0] = vocab['<|startoftext|>']!;
  words.forEach((w, i) => (ids[i + 1] = vocab[w]!));
  return new ort.Tensor('int32', ids, [1, 77]);
};

let reference: Awaited<ReturnType<typeof write>>;
test.before(async () => {
  reference = await write({ seed: 1 });
});
test.after(() => fs.rm(root, { recursive: true, force: true }));

test('writes the diffusers ONNX layout with SD 1.5 configs, small', async () => {
  const { dir, files } = reference;
  assert.equal([...files].sort(), [
    'itemgen.json',
    'model_index.json',
    'scheduler/scheduler_config.json',
    'text_encoder/model.onnx',
    'tokenizer/merges.txt',
    'tokenizer/special_tokens_map.json',
    'tokenizer/tokenizer_config.json',
    'tokenizer/vocab.json',
    'unet/model.onnx',
    'unet/weights.pb',
    'vae_decoder/config.json',
    'vae_decoder/model.onnx',
  ]);
  const json = async (file: string) => JSON.parse(await fs.readFile(path.join(dir, file), 'utf8'));
  const index = await json('model_index.json');
  assert.is(index._class_name, 'OnnxStableDiffusionPipeline');
  assert.equal(index.unet, ['diffusers', 'OnnxRuntimeModel']);
  assert.equal(index.tokenizer, ['transformers', 'CLIPTokenizer']);
  const scheduler = await json('scheduler/scheduler_config.json');
  assert.is(scheduler._class_name, 'PNDMScheduler');
  assert.is(scheduler.beta_start, 0.00085);
  assert.is(scheduler.beta_schedule, 'scaled_linear');
  assert.is(scheduler.steps_offset, 1);
  assert.is((await json('itemgen.json')).prompt_prefix, 'tsuki_advtr, ');
  assert.is((await json('vae_decoder/config.json')).scaling_factor, 0.18215);
  assert.is((await json('tokenizer/tokenizer_config.json')).model_max_length, 77);

  let total = 0;
  for (const file of files) total += (await fs.stat(path.join(dir, file))).size;
  assert.ok(total < 1024 * 1024, `${total} bytes`);
});

test('tokenizer: CLIP byte symbols first, whole words from merges, end-of-text the highest id', async () => {
  const vocab: Record<string, number> = JSON.parse(await fs.readFile(path.join(reference.dir, 'tokenizer/vocab.json'), 'utf8'));
  const ids = Object.values(vocab);
  assert.is(new Set(ids).size, ids.length);
  assert.is(vocab['!'], 0);
  assert.is(vocab['!</w>'], 256);
  assert.is(vocab['Ā'], 188, 'byte 0 maps to U+0100 after the 188 printable bytes');
  for (const word of ['sword</w>', 'shield</w>', 'potion</w>', 'glowing</w>', 'tsuki</w>', 'advtr</w>', 'a</w>', '_</w>']) {
    assert.type(vocab[word], 'number', word);
  }
  assert.is(vocab['<|endoftext|>'], Math.max(...ids));
  assert.is(vocab['<|startoftext|>'], vocab['<|endoftext|>']! - 1);
  const merges = (await fs.readFile(path.join(reference.dir, 'tokenizer/merges.txt'), 'utf8')).trim().split('\n');
  assert.is(merges[0], '#version: 0.2');
  for (const merge of merges.slice(1)) assert.type(vocab[merge.replace(' ', '')], 'number', merge);
});

test('text encoder: int32 input_ids [batch, 77] → last_hidden_state and pooler_output at the end-of-text token', async () => {
  const session = await open(reference.dir, 'text_encoder');
  assert.equal(signature(session.inputMetadata), { input_ids: ['int32', ['batch', 77]] });
  assert.equal(signature(session.outputMetadata), {
    last_hidden_state: ['float32', ['batch', 77, HIDDEN]],
    pooler_output: ['float32', ['batch', HIDDEN]],
  });
  const vocab = JSON.parse(await fs.readFile(path.join(reference.dir, 'tokenizer/vocab.json'), 'utf8'));
  const sword = await session.run({ input_ids: inputIds(vocab, ['a</w>', 'glowing</w>', 'sword</w>']) });
  const shield = await session.run({ input_ids: inputIds(vocab, ['a</w>', 'glowing</w>', 'shield</w>']) });
  const hidden = sword.last_hidden_state!;
  assert.equal(hidden.dims, [1, 77, HIDDEN]);
  assert.equal(sword.pooler_output!.dims, [1, HIDDEN]);
  assert.ok(allFinite(hidden.data as Float32Array));
  // The first end-of-text token is at position 4; CLIP pools there.
  const data = hidden.data as Float32Array;
  assert.equal(Array.from(sword.pooler_output!.data as Float32Array), Array.from(data.subarray(4 * HIDDEN, 5 * HIDDEN)));
  const shieldData = shield.last_hidden_state!.data as Float32Array;
  assert.equal(Array.from(shieldData.subarray(0, 3 * HIDDEN)), Array.from(data.subarray(0, 3 * HIDDEN)), 'causal: earlier tokens unchanged');
  assert.not.equal(Array.from(shieldData.subarray(3 * HIDDEN)), Array.from(data.subarray(3 * HIDDEN)));
  await session.release();
});

test('unet: dynamic batch and size, weights in weights.pb, and every input changes the output', async () => {
  const session = await open(reference.dir, 'unet');
  assert.equal(signature(session.inputMetadata), {
    sample: ['float32', ['batch', 4, 'height', 'width']],
    timestep: ['int64', ['batch']],
    encoder_hidden_states: ['float32', ['batch', 77, HIDDEN]],
  });
  assert.equal(signature(session.outputMetadata), { out_sample: ['float32', ['batch', 4, 'height', 'width']] });

  const feeds = {
    sample: float([2, 4, 64, 64], 1),
    timestep: timesteps(981, 981),
    encoder_hidden_states: float([2, 77, HIDDEN], 2),
  };
  const base = (await session.run(feeds)).out_sample!;
  assert.equal(base.dims, [2, 4, 64, 64]);
  // The prediction is the sample plus a tanh-bounded correction.
  const sample = feeds.sample.data as Float32Array;
  const correction = Array.from(base.data as Float32Array, (v, i) => v - sample[i]!);
  assert.ok(correction.every((v) => Number.isFinite(v) && Math.abs(v) <= 1 + 1e-6));
  assert.ok(new Set(correction).size > 1000, 'not constant');
  for (const [name, changed] of [
    ['sample', { ...feeds, sample: float([2, 4, 64, 64], 3) }],
    ['timestep', { ...feeds, timestep: timesteps(981, 500) }],
    ['encoder_hidden_states', { ...feeds, encoder_hidden_states: float([2, 77, HIDDEN], 4) }],
  ] as const) {
    assert.not.ok(sameData((await session.run(changed)).out_sample!, base), `${name} changes the output`);
  }
  // Other sizes run too (latents are height/8 × width/8).
  assert.equal((await session.run({ ...feeds, sample: float([2, 4, 32, 48], 1) })).out_sample!.dims, [2, 4, 32, 48]);
  await session.release();

  const unetDir = path.join(reference.dir, 'unet');
  const model = onnx.ModelProto.decode(await fs.readFile(path.join(unetDir, 'model.onnx')));
  const floats = (model.graph?.initializer ?? []).filter((t) => t.dataType === onnx.TensorProto.DataType.FLOAT);
  assert.ok(floats.length > 0);
  for (const tensor of floats) {
    assert.is(tensor.dataLocation, onnx.TensorProto.DataLocation.EXTERNAL, tensor.name ?? undefined);
    assert.is(tensor.externalData?.find((e) => e.key === 'location')?.value, 'weights.pb');
  }
  const modelSize = (await fs.stat(path.join(unetDir, 'model.onnx'))).size;
  const weightsSize = (await fs.stat(path.join(unetDir, 'weights.pb'))).size;
  assert.ok(modelSize < 4096, `model.onnx is ${modelSize} bytes`);
  assert.ok(weightsSize > 4 * modelSize, `weights.pb is ${weightsSize} bytes`);
});

test('vae decoder: [1, 4, 64, 64] latents → [1, 3, 512, 512] image in [-1, 1]', async () => {
  const session = await open(reference.dir, 'vae_decoder');
  assert.equal(signature(session.inputMetadata), { latent_sample: ['float32', ['batch', 4, 'height', 'width']] });
  assert.equal(signature(session.outputMetadata), { sample: ['float32', ['batch', 3, 'image_height', 'image_width']] });
  const image = (await session.run({ latent_sample: float([1, 4, 64, 64], 5) })).sample!;
  assert.equal(image.dims, [1, 3, 512, 512]);
  const values = image.data as Float32Array;
  assert.ok(values.every((v) => Number.isFinite(v) && Math.abs(v) <= 1));
  assert.ok(new Set(values).size > 1000, 'not constant');
  await session.release();
});

test('same seed → byte-identical files; another seed → other weights, same configs', async () => {
  const same = await write({ seed: 1 });
  const other = await write({ seed: 2 });
  for (const file of reference.files) {
    const bytes = await fs.readFile(path.join(reference.dir, file));
    assert.ok(bytes.equals(await fs.readFile(path.join(same.dir, file))), file);
    const otherBytes = await fs.readFile(path.join(other.dir, file));
    const isWeights = file.endsWith('.onnx') || file.endsWith('.pb');
    // The UNet's model.onnx holds no weights, only their offsets in weights.pb.
    assert.is(bytes.equals(otherBytes), !isWeights || file === 'unet/model.onnx', file);
  }
});

test('fp16: float16 weights, inputs and outputs; input_ids stay int32 and timestep int64', async () => {
  const { dir } = await write({ seed: 1, fp16: true });
  const half = (dims: number[]) => halfTensor(new Uint16Array(dims.reduce((a, b) => a * b)).fill(0x3c00), dims);
  const isFiniteHalf = (bits: number) => (bits & 0x7c00) !== 0x7c00;

  const textEncoder = await open(dir, 'text_encoder');
  assert.equal(signature(textEncoder.inputMetadata), { input_ids: ['int32', ['batch', 77]] });
  assert.equal(signature(textEncoder.outputMetadata).last_hidden_state, ['float16', ['batch', 77, HIDDEN]]);
  const text = await textEncoder.run({ input_ids: new ort.Tensor('int32', new Int32Array(2 * 77), [2, 77]) });
  assert.equal(text.last_hidden_state!.dims, [2, 77, HIDDEN]);
  assert.ok(halfBits(text.last_hidden_state!.data).every(isFiniteHalf));

  const unet = await open(dir, 'unet');
  assert.equal(signature(unet.inputMetadata), {
    sample: ['float16', ['batch', 4, 'height', 'width']],
    timestep: ['int64', ['batch']],
    encoder_hidden_states: ['float16', ['batch', 77, HIDDEN]],
  });
  const out = await unet.run({ sample: half([2, 4, 64, 64]), timestep: timesteps(1, 999), encoder_hidden_states: half([2, 77, HIDDEN]) });
  assert.is(out.out_sample!.type, 'float16');
  assert.equal(out.out_sample!.dims, [2, 4, 64, 64]);
  assert.ok(halfBits(out.out_sample!.data).every(isFiniteHalf));

  const vae = await open(dir, 'vae_decoder');
  const image = (await vae.run({ latent_sample: half([1, 4, 64, 64]) })).sample!;
  assert.is(image.type, 'float16');
  assert.equal(image.dims, [1, 3, 512, 512]);
  for (const session of [textEncoder, unet, vae]) await session.release();
});

test('fixed batch: the UNet takes exactly one image and computes what the dynamic one does', async () => {
  const { dir } = await write({ seed: 1, fixedBatch: true });
  const fixed = await open(dir, 'unet');
  assert.equal(signature(fixed.inputMetadata), {
    sample: ['float32', [1, 4, 'height', 'width']],
    timestep: ['int64', [1]],
    encoder_hidden_states: ['float32', [1, 77, HIDDEN]],
  });
  const feeds = { sample: float([1, 4, 64, 64], 1), timestep: timesteps(500), encoder_hidden_states: float([1, 77, HIDDEN], 2) };
  const dynamic = await open(reference.dir, 'unet');
  assert.ok(sameData((await fixed.run(feeds)).out_sample!, (await dynamic.run(feeds)).out_sample!));
  try {
    await fixed.run({ sample: float([2, 4, 64, 64], 1), timestep: timesteps(1, 1), encoder_hidden_states: float([2, 77, HIDDEN], 2) });
    assert.unreachable('batch 2 accepted');
  } catch (err) {
    assert.match((err as Error).message, /dimension|Got: 2/i);
  }
  await fixed.release();
  await dynamic.release();
});

test('float32 timestep variant: same weights, same result as int64 timesteps', async () => {
  const { dir } = await write({ seed: 1, timestepType: 'float32' });
  const floatT = await open(dir, 'unet');
  assert.equal(signature(floatT.inputMetadata).timestep, ['float32', ['batch']]);
  const feeds = { sample: float([2, 4, 16, 16], 1), encoder_hidden_states: float([2, 77, HIDDEN], 2) };
  const withFloat = await floatT.run({ ...feeds, timestep: new ort.Tensor('float32', Float32Array.of(981, 1), [2]) });
  const dynamic = await open(reference.dir, 'unet');
  const withInt = await dynamic.run({ ...feeds, timestep: timesteps(981, 1) });
  assert.ok(sameData(withFloat.out_sample!, withInt.out_sample!));
  await floatT.release();
  await dynamic.release();
});

test.run();
