// The denoising step as one ONNX graph (denoise-graph.ts): the affine scheduler steps it takes,
// and the whole pipeline on it against the host path, on the tiny model and the CPU.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { GenerationParams } from '../../../src/core/request.ts';
import { buildDenoiseStepModel, DenoiseGraphError } from '../../../src/runner/pipeline/denoise-graph.ts';
import { loadModel, type Model } from '../../../src/runner/pipeline/model.ts';
import { decodePng } from '../../../src/runner/pipeline/png.ts';
import { createScheduler } from '../../../src/runner/pipeline/schedulers/index.ts';
import { createDdimScheduler } from '../../../src/runner/pipeline/schedulers/ddim.ts';
import { createEulerScheduler } from '../../../src/runner/pipeline/schedulers/euler.ts';
import { SD15_SCHEDULER_CONFIG, writeTinyModel } from '../../../src/runner/pipeline/tiny-model.ts';
import { writeSd15Model } from '../../../src/runner/pipeline/sd15-model.ts';
import { txt2img } from '../../../src/runner/pipeline/txt2img.ts';

const it = suite<{ dir: string }>('denoising step graph');

const params: GenerationParams = {
  prompt: 'a glowing sword',
  negative_prompt: '',
  num_inference_steps: 6,
  guidance_scale: 7.5,
  seed: 42,
  width: 128,
  height: 128,
  scheduler: 'ddim',
  num_images: 1,
};

it.before(async (ctx) => {
  ctx.dir = await fs.mkdtemp(path.join(os.tmpdir(), 'itemgen-denoise-'));
});
it.after(({ dir }) => fs.rm(dir, { recursive: true, force: true }));

const noise = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + seed) * 1.7);

it('DDIM and Euler: the affine step is their step, and advances them as step does', () => {
  for (const [name, make] of [
    ['ddim', () => createDdimScheduler(SD15_SCHEDULER_CONFIG)],
    ['euler', () => createEulerScheduler(SD15_SCHEDULER_CONFIG)],
  ] as const) {
    const stepped = make();
    const affine = make();
    stepped.setTimesteps(10);
    affine.setTimesteps(10);
    let x: Float32Array = noise(256, 1).map((v) => v * stepped.initNoiseSigma);
    for (const t of stepped.timesteps) {
      const m = noise(256, t);
      const scaled = stepped.scaleModelInput(x, t);
      const expected = stepped.step(m, t, x);
      const a = affine.affineStep!(t)!;
      for (let i = 0; i < x.length; i++) {
        assert.ok(Math.abs(x[i]! / a.sampleDivisor - scaled[i]!) <= 1e-6 * Math.abs(scaled[i]!) + 1e-7, `${name} t=${t}: model input`);
        const got = a.sampleCoeff * x[i]! + a.noiseCoeff * m[i]!;
        assert.ok(Math.abs(got - expected[i]!) <= 1e-5 * (1 + Math.abs(expected[i]!)), `${name} t=${t}: ${got} vs ${expected[i]}`);
      }
      x = expected;
    }
  }
});

it('no affine step where the step needs noise, clipping, another prediction, or history', () => {
  const ddim = (extra: Record<string, unknown>) => {
    const s = createDdimScheduler({ ...SD15_SCHEDULER_CONFIG, ...extra });
    s.setTimesteps(5);
    return s.affineStep!(s.timesteps[0]!);
  };
  assert.is(ddim({ eta: 0.5 }), undefined, 'eta > 0');
  assert.is(ddim({ clip_sample: true }), undefined, 'clip_sample');
  assert.is(ddim({ prediction_type: 'v_prediction' }), undefined, 'v_prediction');
  const churned = createEulerScheduler(SD15_SCHEDULER_CONFIG, { sChurn: 1 });
  churned.setTimesteps(5);
  assert.is(churned.affineStep!(churned.timesteps[0]!), undefined, 'Euler with churn');
  for (const name of ['pndm', 'euler_a', 'dpmpp_2m', 'lcm'] as const) {
    assert.is(createScheduler(name, SD15_SCHEDULER_CONFIG).affineStep, undefined, name);
  }
});

const pixelDiff = async (host: Model, device: Model, p: Partial<GenerationParams>) => {
  const a = await txt2img(host, { ...params, ...p });
  const b = await txt2img(device, { ...params, ...p });
  let max = 0;
  let sum = 0;
  let count = 0;
  for (let k = 0; k < a.images.length; k++) {
    const x = decodePng(a.images[k]!.png).rgb;
    const y = decodePng(b.images[k]!.png).rgb;
    for (let i = 0; i < x.length; i++) {
      const d = Math.abs(x[i]! - y[i]!);
      max = Math.max(max, d);
      sum += d;
      count++;
    }
  }
  return { max, mean: sum / count, same: a.images.every((img, k) => img.png.equals(b.images[k]!.png)) };
};

it('the pipeline on the graph gives the host path\'s images up to float rounding, every scheduler, with and without guidance', async ({ dir }) => {
  await writeTinyModel(path.join(dir, 'tiny'), { seed: 1 });
  const host = await loadModel(path.join(dir, 'tiny'), { executionProvider: 'cpu' });
  const device = await loadModel(path.join(dir, 'tiny'), { executionProvider: 'cpu', denoiseOnDevice: true });
  assert.is(host.unet.denoiser, 'host', 'the CPU default keeps the host path (decision 7 bytes)');
  assert.is(device.unet.denoiser, 'device');
  assert.equal(device.unet.session.outputNames, ['noise_pred', 'prev_sample']);
  for (const scheduler of ['ddim', 'euler', 'euler_a', 'dpmpp_2m', 'pndm', 'lcm'] as const) {
    for (const [guidance, images] of [[7.5, 2], [1, 1]] as const) {
      const d = await pixelDiff(host, device, { scheduler, guidance_scale: guidance, num_images: images });
      // Guidance in float32 ops instead of one float64 expression, and an affine step instead of
      // torch's operation order: a rounding apart, never a different picture.
      assert.ok(d.max <= 2 && d.mean < 0.01, `${scheduler} guidance ${guidance}: max ${d.max}, mean ${d.mean}`);
    }
  }
});

it('a float16 UNet: close to the host path; a fixed-batch one runs on the host, said once in the log', async ({ dir }) => {
  await writeTinyModel(path.join(dir, 'fp16'), { seed: 1, fp16: true });
  const host16 = await loadModel(path.join(dir, 'fp16'), { executionProvider: 'cpu' });
  const device16 = await loadModel(path.join(dir, 'fp16'), { executionProvider: 'cpu', denoiseOnDevice: true });
  assert.is(device16.unet.denoiser, 'device');
  assert.is(device16.unet.floatType, 'float16', 'encoder states stay in the UNet\'s precision');
  // The host rounds the UNet's input to float16 in JS; onnxruntime's CPU kernels may skip a cast pair.
  const d = await pixelDiff(host16, device16, {});
  assert.ok(d.mean <= 1, `fp16: mean ${d.mean}`);

  await writeTinyModel(path.join(dir, 'fixed'), { seed: 1, fixedBatch: true });
  const warnings: string[] = [];
  const log = { debug() {}, info() {}, error() {}, warn: (msg: string, fields?: Record<string, unknown>) => void warnings.push(`${msg}: ${String(fields?.reason)}`) };
  const fixed = await loadModel(path.join(dir, 'fixed'), { executionProvider: 'cpu', denoiseOnDevice: true, log });
  assert.is(fixed.unet.denoiser, 'host');
  assert.equal(warnings, ["denoising step on the device unavailable; guidance and the scheduler run on the host: the UNet's batch is fixed at 1"]);
  const plain = await loadModel(path.join(dir, 'fixed'), { executionProvider: 'cpu' });
  assert.ok((await pixelDiff(plain, fixed, {})).same, 'the host path, byte for byte');
});

it("on SD 1.5's own graph (sd15-model.ts at width 0.125): the same images up to rounding", async ({ dir }) => {
  for (const fp16 of [false, true]) {
    const folder = path.join(dir, fp16 ? 'sd15-fp16' : 'sd15');
    await writeSd15Model(folder, { width: 0.125, fp16, seed: 3 });
    const host = await loadModel(folder, { executionProvider: 'cpu' });
    const device = await loadModel(folder, { executionProvider: 'cpu', denoiseOnDevice: true });
    assert.is(device.unet.denoiser, 'device');
    // Measured with the sd15-model branch: max 1 (fp32) and 2 (fp16), mean 0.00 and 0.13.
    const d = await pixelDiff(host, device, { width: 256, height: 256, num_inference_steps: 2 });
    assert.ok(d.max <= 3 && d.mean <= 0.5, `fp16 ${fp16}: max ${d.max}, mean ${d.mean}`);
  }
});

it('on CUDA (scripts/gpu-check.sh): the graph there gives the CPU host path\'s images up to float rounding', async ({ dir }) => {
  if (process.env.EXECUTION_PROVIDER !== 'cuda') return;
  await writeTinyModel(path.join(dir, 'gpu'), { seed: 1 });
  const cpu = await loadModel(path.join(dir, 'gpu'), { executionProvider: 'cpu' });
  const cuda = await loadModel(path.join(dir, 'gpu'), { executionProvider: 'cuda' });
  assert.is(cuda.executionProvider, 'cuda');
  assert.is(cuda.unet.denoiser, 'device', 'the default on CUDA');
  for (const scheduler of ['ddim', 'euler', 'dpmpp_2m'] as const) {
    // cuDNN's algorithms (TF32 among them) round differently from the CPU's: close, not equal.
    const d = await pixelDiff(cpu, cuda, { scheduler, num_images: 2 });
    assert.ok(d.mean <= 2, `${scheduler}: mean pixel difference ${d.mean} (max ${d.max})`);
  }
});

it('bytes that are no ONNX model are refused with a reason', () => {
  assert.throws(
    () => buildDenoiseStepModel(Buffer.from('not a model at all'), { sample: 'sample', encoderHiddenStates: 'encoder_hidden_states', outputs: ['out_sample'] }),
    (err: unknown) => err instanceof DenoiseGraphError,
  );
});

it.run();
