// The generated model of SD 1.5's architecture: its parameter counts at full width against SD
// 1.5's, and the same code at an eighth of the width written, loaded from external data files with
// Optimum's signatures, run through the real pipeline, finite in fp32 and fp16.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import onnxProto from 'onnx-proto';
import ort from 'onnxruntime-node';
import type { GenerationParams } from '../../../src/core/request.ts';
import { loadModel } from '../../../src/runner/pipeline/model.ts';
import { decodePng } from '../../../src/runner/pipeline/png.ts';
import { SD15_WEIGHTS_FILE, sd15ParameterCounts, writeSd15Model } from '../../../src/runner/pipeline/sd15-model.ts';
import { floatTensor } from '../../../src/runner/pipeline/session-io.ts';
import { fromHalf, halfBits } from '../../../src/runner/pipeline/tensors.ts';
import { txt2img } from '../../../src/runner/pipeline/txt2img.ts';

const { onnx } = onnxProto;
const WIDTH = 0.125;
/** Channel widths at WIDTH: text 768 → 96, UNet 320/640/1280/1280 → 32/96/160/160. */
const TEXT = 96;

const it = suite<{ root: string; fp32: string; fp16: string }>('generated SD 1.5 model');

it.before(async (ctx) => {
  ctx.root = await fs.mkdtemp(path.join(os.tmpdir(), 'itemgen-sd15-'));
  ctx.fp32 = path.join(ctx.root, 'fp32');
  ctx.fp16 = path.join(ctx.root, 'fp16');
  await writeSd15Model(ctx.fp32, { width: WIDTH, seed: 1 });
  await writeSd15Model(ctx.fp16, { width: WIDTH, seed: 1, fp16: true });
});
it.after(({ root }) => fs.rm(root, { recursive: true, force: true }));

type Signature = Record<string, [type: string, shape: readonly (number | string)[]]>;
const signature = (metadata: readonly ort.InferenceSession.ValueMetadata[]): Signature =>
  Object.fromEntries(metadata.map((m) => [m.name, m.isTensor ? [m.type, m.shape] : ['non-tensor', []]]));
const floats = (t: ort.Tensor) => (t.type === 'float16' ? fromHalf(halfBits(t.data)) : (t.data as Float32Array));
const allFinite = (data: Float32Array) => data.every(Number.isFinite);
/** The pipeline's own loading (once per folder and process), whose sessions the graph tests run too. */
const load = (dir: string) => loadModel(dir, { executionProvider: 'cpu', hashCacheFile: null });
const open = async (dir: string, sub: 'textEncoder' | 'unet' | 'vaeDecoder') => (await load(dir))[sub].session;
const ids = (rows: number[][]) => new ort.Tensor('int32', Int32Array.from(rows.flat()), [rows.length, rows[0]!.length]);
const wave = (size: number, scale: number) => Float32Array.from({ length: size }, (_, i) => Math.sin(i * 12.9898) * scale);

it("counts SD 1.5's parameters at full width, without building its weights", () => {
  const counts = sd15ParameterCounts(1);
  assert.equal(counts, { textEncoder: 123_060_480, unet: 859_520_964, vaeDecoder: 49_490_199 });
  assert.ok(counts.unet * 4 > 2 ** 31, "the fp32 UNet is beyond protobuf's 2 GB: its weights must be external");
});

it('writes the diffusers layout, every learned weight external and counted, the large ones 64 KiB aligned', async ({ fp32 }) => {
  const files = await writeSd15Model(path.join(fp32, '..', 'again'), { width: WIDTH, seed: 1 });
  assert.equal(files.filter((f) => f.endsWith('.onnx') || f.endsWith('_data')).sort(), [
    'text_encoder/model.onnx',
    'text_encoder/model.onnx_data',
    'unet/model.onnx',
    'unet/model.onnx_data',
    'vae_decoder/model.onnx',
    'vae_decoder/model.onnx_data',
  ]);
  const counts = sd15ParameterCounts(WIDTH);
  const unetConfig = JSON.parse(await fs.readFile(path.join(fp32, 'unet/config.json'), 'utf8'));
  assert.equal(unetConfig.block_out_channels, [32, 96, 160, 160]);
  assert.is(unetConfig.cross_attention_dim, TEXT);
  for (const [sub, expected] of [['text_encoder', counts.textEncoder], ['unet', counts.unet], ['vae_decoder', counts.vaeDecoder]] as const) {
    const model = onnx.ModelProto.decode(await fs.readFile(path.join(fp32, sub, 'model.onnx')));
    const dataSize = (await fs.stat(path.join(fp32, sub, SD15_WEIGHTS_FILE))).size;
    let external = 0;
    for (const tensor of model.graph!.initializer!) {
      if (tensor.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL) continue;
      const info = Object.fromEntries(tensor.externalData!.map((e) => [e.key, e.value]));
      assert.is(info.location, SD15_WEIGHTS_FILE, tensor.name!);
      const [offset, length] = [Number(info.offset), Number(info.length)];
      const elements = tensor.dims!.reduce((a: number, b) => a * Number(b), 1);
      assert.is(length, elements * 4, tensor.name!);
      assert.ok(offset + length <= dataSize, tensor.name!);
      if (length >= 65536) assert.is(offset % 65536, 0, `${tensor.name} aligned`);
      external += elements;
    }
    assert.is(external, expected, `${sub}: what is written is what sd15ParameterCounts counts`);
  }
  // Seeded: the same seed writes the same bytes.
  for (const file of ['unet/model.onnx', 'unet/model.onnx_data']) {
    assert.ok((await fs.readFile(path.join(fp32, file))).equals(await fs.readFile(path.join(fp32, '..', 'again', file))), file);
  }
});

it("has Optimum's input and output names, dtypes and shapes; external data loads from the model's path", async ({ fp32, fp16 }) => {
  for (const [dir, float] of [[fp32, 'float32'], [fp16, 'float16']] as const) {
    const text = await open(dir, 'textEncoder');
    assert.equal(signature(text.inputMetadata), { input_ids: ['int32', ['batch_size', 'sequence_length']] });
    assert.equal(signature(text.outputMetadata), {
      last_hidden_state: [float, ['batch_size', 'sequence_length', TEXT]],
      pooler_output: [float, ['batch_size', TEXT]],
    });
    const unet = await open(dir, 'unet');
    assert.equal(signature(unet.inputMetadata), {
      sample: [float, ['batch_size', 4, 'height', 'width']],
      timestep: ['int64', ['steps']],
      encoder_hidden_states: [float, ['batch_size', 'sequence_length', TEXT]],
    });
    assert.equal(signature(unet.outputMetadata), { out_sample: [float, ['batch_size', 4, 'height', 'width']] });
    const vae = await open(dir, 'vaeDecoder');
    assert.equal(signature(vae.inputMetadata), { latent_sample: [float, ['batch_size', 4, 'latent_height', 'latent_width']] });
    assert.equal(signature(vae.outputMetadata), { sample: [float, ['batch_size', 3, 'latent_height * 8', 'latent_width * 8']] });
  }
});

it('text encoder: causal, any sequence length, pooled at the end-of-text token', async ({ fp32 }) => {
  const text = await open(fp32, 'textEncoder');
  const vocab = JSON.parse(await fs.readFile(path.join(fp32, 'tokenizer/vocab.json'), 'utf8')) as Record<string, number>;
  const eos = vocab['<|endoftext|>']!;
  const prompt = [vocab['<|startoftext|>']!, vocab['sword</w>'] ?? 300, eos, eos, eos];
  const changed = [...prompt.slice(0, 2), vocab['shield</w>'] ?? 301, eos, eos];
  const out = await text.run({ input_ids: ids([prompt, changed]) });
  const hidden = floats(out.last_hidden_state!);
  assert.equal(out.last_hidden_state!.dims, [2, 5, TEXT]);
  const row = (b: number, p: number) => Array.from(hidden.subarray((b * 5 + p) * TEXT, (b * 5 + p + 1) * TEXT));
  assert.equal(row(1, 0), row(0, 0), 'causal: positions before the change are unchanged');
  assert.equal(row(1, 1), row(0, 1));
  assert.not.equal(row(1, 2), row(0, 2));
  assert.equal(Array.from(floats(out.pooler_output!).subarray(0, TEXT)), row(0, 2), 'pooled at the first end-of-text token');
});

for (const precision of ['fp32', 'fp16'] as const) {
  it(`${precision}: the three graphs chained stay finite at SD's scales (latents up to the VAE's 1/0.18215)`, async (ctx) => {
    const dir = ctx[precision];
    const float = precision === 'fp16' ? 'float16' : 'float32';
    const text = await open(dir, 'textEncoder');
    const states = await text.run({ input_ids: ids([new Array(77).fill(1), [0, 5, 9, ...new Array(74).fill(300)]]) });
    const hidden = floats(states.last_hidden_state!);
    assert.ok(allFinite(hidden), 'text encoder');
    const unet = await open(dir, 'unet');
    for (const t of [1n, 500n, 999n]) {
      const out = await unet.run({
        sample: floatTensor(wave(2 * 4 * 16 * 16, 3), [2, 4, 16, 16], float),
        timestep: new ort.Tensor('int64', BigInt64Array.from([t, t]), [2]),
        encoder_hidden_states: floatTensor(hidden, [2, 77, TEXT], float),
      });
      const noise = floats(out.out_sample!);
      assert.ok(allFinite(noise), `UNet at t=${t}`);
      assert.ok(noise.some((v) => v !== 0));
    }
    const vae = await open(dir, 'vaeDecoder');
    const image = await vae.run({ latent_sample: floatTensor(wave(4 * 8 * 8, 4 / 0.18215), [1, 4, 8, 8], float) });
    assert.equal(image.sample!.dims, [1, 3, 64, 64]);
    assert.ok(allFinite(floats(image.sample!)), 'VAE decoder');
  });

  it(`${precision}: the pipeline loads the folder unchanged and generates a 64×64 image`, async (ctx) => {
    const model = await load(ctx[precision]);
    const params: GenerationParams = {
      prompt: 'a glowing sword',
      negative_prompt: '',
      num_inference_steps: 3,
      guidance_scale: 7.5,
      seed: 1,
      width: 64,
      height: 64,
      scheduler: 'euler_a',
      num_images: 2,
    };
    const result = await txt2img(model, params);
    for (const image of result.images) {
      const png = decodePng(image.png);
      assert.is(png.width, 64);
      // NaN pixels would all be 0: an image of many values is a finite one.
      assert.ok(new Set(png.rgb).size > 100, 'noise, not a flat (NaN) image');
    }
    assert.ok(Object.values(result.timingsMs).every(Number.isFinite));
  });
}

it('refuses a width outside (0, 1]', () => {
  for (const width of [0, -1, 1.5, Number.NaN]) assert.throws(() => sd15ParameterCounts(width), /width must be in \(0, 1\]/);
});

it.run();
