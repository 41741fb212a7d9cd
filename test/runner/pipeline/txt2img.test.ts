// The pipeline end to end on the tiny generated model (real onnxruntime, CPU).
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { GenerationParams } from '../../../src/core/request.ts';
import { cudaProviderInstalled, loadModel, ModelFolderError, type ExecutionProvider, type Model } from '../../../src/runner/pipeline/model.ts';
import { decodePng } from '../../../src/runner/pipeline/png.ts';
import { writeTinyModel } from '../../../src/runner/pipeline/tiny-model.ts';
import { encodeDecodedImages, encodeRequestPrompt, GenerationAbortedError, generateFromEmbeddings, txt2img } from '../../../src/runner/pipeline/txt2img.ts';

const it = suite<{ dir: string; model: Model }>('txt2img on the tiny model');

// scripts/gpu-check.sh runs these with EXECUTION_PROVIDER=cuda on a GPU (the denoising step graph
// then runs there); elsewhere `auto` falls back to the CPU.
const provider = (process.env.EXECUTION_PROVIDER ?? 'auto') as ExecutionProvider;

const params: GenerationParams = {
  prompt: 'a glowing sword',
  negative_prompt: '',
  num_inference_steps: 3,
  guidance_scale: 7.5,
  seed: 42,
  width: 256,
  height: 256,
  scheduler: 'ddim',
  num_images: 1,
};
const run = (model: Model, p: Partial<GenerationParams> = {}) => txt2img(model, { ...params, ...p });
const pixels = (png: Buffer) => Buffer.from(decodePng(png).rgb);

it.before(async (ctx) => {
  ctx.dir = await fs.mkdtemp(path.join(os.tmpdir(), 'itemgen-model-'));
  await writeTinyModel(path.join(ctx.dir, 'tiny'), { seed: 1 });
  ctx.model = await loadModel(path.join(ctx.dir, 'tiny'), { executionProvider: provider });
  if (provider === 'cuda') assert.is(ctx.model.executionProvider, 'cuda');
});
it.after(({ dir }) => fs.rm(dir, { recursive: true, force: true }));

it('generates a PNG of the requested size with the parameters and a manifest', async ({ model }) => {
  const result = await run(model);
  assert.is(result.images.length, 1);
  const png = decodePng(result.images[0]!.png);
  assert.is(png.width, 256);
  assert.is(png.height, 256);
  assert.is(result.prompt, 'tsuki_advtr, a glowing sword', 'prompt prefix from itemgen.json');
  assert.is(result.negativePrompt, 'blurry, low quality', 'default negative prompt from itemgen.json');
  const lines = png.texts.parameters!.split('\n');
  assert.is(lines[0], 'tsuki_advtr, a glowing sword');
  assert.is(lines[1], 'Negative prompt: blurry, low quality');
  assert.match(lines[2]!, /^Steps: 3, Sampler: DDIM, CFG scale: 7\.5, Seed: 42, Size: 256x256, Model hash: [0-9a-f]{10}$/);
  const manifest = JSON.parse(png.texts.itemgen!);
  assert.is(manifest.seed, 42);
  assert.is(manifest.model_hash, model.hash);
  assert.is(manifest.execution_provider, model.executionProvider);
  assert.is(manifest.scheduler.name, 'ddim');
  assert.type(manifest.onnxruntime_version, 'string');
  const distinct = new Set(png.rgb).size;
  assert.ok(distinct > 10, 'not a flat image');
});

it("the three stages run apart, with another generation between, give txt2img's bytes", async ({ model }) => {
  const whole = await run(model, { num_images: 2 });
  const encoded = await encodeRequestPrompt(model, { ...params, num_images: 2 });
  // A pipelined runner encodes the next prompt while another generation runs.
  await run(model, { prompt: 'something else', seed: 7 });
  const staged = await encodeDecodedImages(await generateFromEmbeddings(encoded));
  assert.equal(staged.images.map((i) => i.seed), whole.images.map((i) => i.seed));
  staged.images.forEach((image, i) => assert.ok(image.png.equals(whole.images[i]!.png), `image ${i}`));
  const t = staged.timingsMs;
  assert.ok(Math.abs(t.total - (t.textEncoder + t.denoise + t.decode + t.png)) < 1e-6, "the total is the stages' own time");
});

it('same request and seed → byte-identical PNG; seed, prompt, scheduler and guidance change the image', async ({ model }) => {
  const a = (await run(model)).images[0]!.png;
  const b = (await run(model)).images[0]!.png;
  assert.ok(a.equals(b), 'byte-identical');
  const timed = await txt2img(model, params, { timingsInPng: true });
  const manifest = JSON.parse(decodePng(timed.images[0]!.png).texts.itemgen!);
  assert.type(manifest.timings_ms.unet, 'number', 'timings in the manifest on request');
  assert.ok(pixels(timed.images[0]!.png).equals(pixels(a)));
  const variants = [
    (await run(model, { seed: 43 })).images[0]!.png,
    (await run(model, { prompt: 'a wooden shield' })).images[0]!.png,
    (await run(model, { scheduler: 'euler' })).images[0]!.png,
    (await run(model, { guidance_scale: 1 })).images[0]!.png,
  ];
  for (const v of variants) assert.not.ok(pixels(v).equals(pixels(a)));
});

it('several images per request, each its own noise', async ({ model }) => {
  const result = await run(model, { num_images: 2 });
  assert.is(result.images.length, 2);
  assert.not.ok(pixels(result.images[0]!.png).equals(pixels(result.images[1]!.png)));
});

it('image i of a batch uses seed + i: rerun alone with num_images 1 and that seed, it is the same bytes', async ({ model }) => {
  for (const scheduler of ['ddim', 'euler_a', 'lcm'] as const) {
    const batch = await run(model, { scheduler, num_images: 3, num_inference_steps: 3 });
    assert.equal(batch.images.map((i) => i.seed), [42, 43, 44], scheduler);
    for (const i of [0, 1, 2]) {
      const alone = await run(model, { scheduler, num_images: 1, seed: 42 + i, num_inference_steps: 3 });
      assert.ok(alone.images[0]!.png.equals(batch.images[i]!.png), `${scheduler}: image ${i} alone gives the same PNG bytes`);
    }
    const infotext = decodePng(batch.images[1]!.png).texts.parameters!;
    assert.match(infotext, /Seed: 43,/, 'the infotext carries the image\'s own seed');
    const manifest = JSON.parse(decodePng(batch.images[1]!.png).texts.itemgen!);
    assert.is(manifest.seed, 43);
    assert.is(manifest.params.seed, 43);
    assert.is(manifest.params.num_images, 1, 'the manifest holds the parameters that rerun this image alone');
  }
  // Seeds wrap at 2^32, as the generator keeps only their low 32 bits.
  const wrapped = await run(model, { seed: 2 ** 32 - 1, num_images: 2 });
  assert.equal(wrapped.images.map((i) => i.seed), [2 ** 32 - 1, 0]);
  assert.ok(wrapped.images[1]!.png.equals((await run(model, { seed: 0 })).images[0]!.png));
});

it('previews: onStep can render the first image\'s latents, an eighth of the image size', async ({ model }) => {
  const previews: Buffer[] = [];
  await txt2img(model, { ...params, num_images: 2 }, { onStep: (step, _total, preview) => step === 1 && previews.push(preview()) });
  assert.is(previews.length, 1);
  const png = decodePng(previews[0]!);
  assert.is(png.width, 32);
  assert.is(png.height, 32);
  assert.ok(new Set(png.rgb).size > 10, 'a picture, not a flat square');
  // 512² gives 64×64 (latent resolution); 1024² is averaged down to the same 64×64.
  for (const [side, expected] of [[512, 64], [1024, 64]] as const) {
    let size: [number, number] | undefined;
    await txt2img(model, { ...params, width: side, height: side, num_inference_steps: 1 }, { onStep: (_s, _t, preview) => {
      const p = decodePng(preview());
      size = [p.width, p.height];
    } });
    assert.equal(size, [expected, expected], `${side}²`);
  }
});

it('progress per step, and cancellation before the next step', async ({ model }) => {
  const seen: [number, number][] = [];
  await txt2img(model, { ...params, num_inference_steps: 4 }, { onStep: (s, t) => seen.push([s, t]) });
  assert.equal(seen, [[1, 4], [2, 4], [3, 4], [4, 4]]);
  const controller = new AbortController();
  let steps = 0;
  try {
    await txt2img(model, { ...params, num_inference_steps: 10 }, {
      signal: controller.signal,
      onStep: (s) => {
        steps = s;
        if (s === 2) controller.abort();
      },
    });
    assert.unreachable('should have been canceled');
  } catch (err) {
    assert.instance(err, GenerationAbortedError);
  }
  assert.is(steps, 2);
});

it('every scheduler runs, and a reused scheduler carries nothing over between generations', async ({ model }) => {
  for (const scheduler of ['ddim', 'pndm', 'euler', 'euler_a', 'dpmpp_2m', 'lcm'] as const) {
    const first = (await run(model, { scheduler, num_inference_steps: 4 })).images[0]!.png;
    await run(model, { scheduler, num_inference_steps: 7, seed: 5 });
    const again = (await run(model, { scheduler, num_inference_steps: 4 })).images[0]!.png;
    assert.is(decodePng(first).width, 256, scheduler);
    assert.ok(first.equals(again), `${scheduler}: same result after another generation`);
  }
});

it('fp16, fixed-batch and float-timestep exports run too', async ({ dir, model }) => {
  const reference = pixels((await run(model)).images[0]!.png);
  for (const [name, options] of [
    ['fixed', { seed: 1, fixedBatch: true }],
    ['float-t', { seed: 1, timestepType: 'float32' as const }],
    ['fp16', { seed: 1, fp16: true }],
  ] as const) {
    await writeTinyModel(path.join(dir, name), options);
    const variant = await loadModel(path.join(dir, name), { executionProvider: provider });
    const image = pixels((await run(variant)).images[0]!.png);
    assert.is(image.length, reference.length, name);
    let maxDiff = 0;
    let sumDiff = 0;
    for (let i = 0; i < image.length; i++) {
      const diff = Math.abs(image[i]! - reference[i]!);
      maxDiff = Math.max(maxDiff, diff);
      sumDiff += diff;
    }
    if (name !== 'fp16') {
      // Same weights, other graph shape: the same picture up to float rounding.
      assert.ok(maxDiff <= 2, `${name}: max pixel difference ${maxDiff}`);
    } else {
      // The same weights rounded to float16: close on average (0.6 here; float16 outputs read as
      // anything but their bits give ~48).
      assert.ok(sumDiff / image.length <= 2, `fp16: mean pixel difference ${sumDiff / image.length}`);
    }
  }
});

it('execution providers: auto falls back to CPU here with one log line; cuda fails loudly', async ({ dir }) => {
  // Only where onnxruntime-node's CUDA library is absent (this machine, CI); with it nothing falls back.
  if (cudaProviderInstalled()) return;
  const folder = path.join(dir, 'auto');
  await writeTinyModel(folder, { seed: 3 });
  const warnings: [string, Record<string, unknown> | undefined][] = [];
  const log = { debug() {}, info() {}, error() {}, warn: (msg: string, fields?: Record<string, unknown>) => void warnings.push([msg, fields]) };
  const model = await loadModel(folder, { executionProvider: 'auto', log });
  assert.is(model.executionProvider, 'cpu');
  assert.equal(warnings.map(([msg]) => msg), ['CUDA execution provider unavailable; using CPU']);
  assert.match(String(warnings[0]![1]?.reason), /not installed/);
  try {
    await loadModel(path.join(dir, 'tiny'), { executionProvider: 'cuda' });
    assert.unreachable('cuda is not available on this machine');
  } catch (err) {
    assert.match((err as Error).message, /EXECUTION_PROVIDER=cuda but CUDA is unavailable: .*not installed/);
  }
});

it('a broken folder says which file and what is wrong', async ({ dir }) => {
  const broken = path.join(dir, 'broken');
  await writeTinyModel(broken, { seed: 1 });
  await fs.rm(path.join(broken, 'unet', 'model.onnx'));
  const expectError = async (pattern: RegExp) => {
    try {
      await loadModel(broken, { executionProvider: 'cpu' });
      assert.unreachable('loaded a broken folder');
    } catch (err) {
      assert.instance(err, ModelFolderError);
      assert.match((err as Error).message, pattern);
    }
  };
  await expectError(/^unet\/model\.onnx: missing/);
  await fs.writeFile(path.join(broken, 'scheduler', 'scheduler_config.json'), '{ not json');
  await expectError(/^scheduler\/scheduler_config\.json: invalid JSON/);
  await fs.writeFile(path.join(broken, 'itemgen.json'), '{"default_scheduler": "k_lms"}');
  await fs.writeFile(path.join(broken, 'scheduler', 'scheduler_config.json'), '{}');
  await expectError(/^itemgen\.json: default_scheduler must be one of/);
});

it.run();
