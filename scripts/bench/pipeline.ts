// `npm run bench:pipeline`: the diffusion pipeline on the tiny generated model at 512×512 on
// the CPU — where a step's time goes (inside onnxruntime vs. our scheduler, guidance and tensor
// copies), PNG encoding, images per second, and resident memory after 10 and after 200
// generations (a leak shows as growth between the two). The npm script sets MALLOC_ARENA_MAX=2 as
// the runner image does: without it glibc's per-thread arenas make resident memory wander by ±10 %.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { GenerationParams } from '../../src/core/request.ts';
import { loadModel } from '../../src/runner/pipeline/model.ts';
import { writeTinyModel } from '../../src/runner/pipeline/tiny-model.ts';
import { txt2img } from '../../src/runner/pipeline/txt2img.ts';
import { verdict } from './common.ts';

const GENERATIONS = Number(process.env.BENCH_GENERATIONS ?? 200);
const STEPS = 20;
// The default is Stable Diffusion's DDIM; any scheduler name compares the others.
const SCHEDULER = (process.env.BENCH_SCHEDULER ?? 'ddim') as GenerationParams['scheduler'];
const TARGETS = { outsideShare: 0.05, pngMs: 20, memoryGrowth: 0.1 };

const gc = (globalThis as { gc?: () => void }).gc;
const rssMb = () => {
  gc?.();
  return process.memoryUsage().rss / 2 ** 20;
};
const fmt = (v: number, digits = 2) => v.toFixed(digits);

const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'itemgen-bench-model-'));
try {
  await writeTinyModel(dir, { seed: 7 });
  const model = await loadModel(dir, { executionProvider: 'cpu' });
  const params: GenerationParams = {
    prompt: 'a glowing sword',
    negative_prompt: '',
    num_inference_steps: STEPS,
    guidance_scale: 7.5,
    seed: 1,
    width: 512,
    height: 512,
    scheduler: SCHEDULER,
    num_images: 1,
  };
  console.log(`pipeline bench — tiny model, 512×512, ${STEPS} steps, guidance 7.5, ${SCHEDULER}, ${model.executionProvider}, ${GENERATIONS} generations, MALLOC_ARENA_MAX=${process.env.MALLOC_ARENA_MAX ?? 'unset'}`);
  if (!gc) console.log('(run with --expose-gc for steadier memory readings)');

  let unet = 0;
  let sched = 0;
  let denoise = 0;
  let png = 0;
  let rssAfter10 = 0;
  const started = performance.now();
  for (let i = 1; i <= GENERATIONS; i++) {
    const result = await txt2img(model, { ...params, seed: i });
    if (i > 2) {
      // The first generations warm up onnxruntime's allocations; keep them out of the averages.
      unet += result.timingsMs.unet;
      sched += result.timingsMs.scheduler;
      denoise += result.timingsMs.denoise;
      png += result.timingsMs.png;
    }
    if (i === 10) rssAfter10 = rssMb();
  }
  const elapsed = (performance.now() - started) / 1000;
  const rssAfterAll = rssMb();
  const counted = GENERATIONS - 2;
  const stepMs = denoise / counted / STEPS;
  const insideMs = unet / counted / STEPS;
  const outsideMs = stepMs - insideMs;
  const schedulerMs = sched / counted / STEPS;
  const pngMs = png / counted;
  const growth = (rssAfterAll - rssAfter10) / rssAfter10;

  console.log(`
step time             ${fmt(stepMs)} ms   (inside onnxruntime ${fmt(insideMs)} ms, outside ${fmt(outsideMs, 3)} ms = ${fmt((outsideMs / stepMs) * 100, 1)} %;
                      of which the scheduler ${fmt(schedulerMs, 3)} ms, guidance and tensor copies ${fmt(outsideMs - schedulerMs, 3)} ms)
png encoding          ${fmt(pngMs)} ms per image
images per second     ${fmt(GENERATIONS / elapsed)}
resident memory       ${fmt(rssAfter10, 0)} MiB after 10, ${fmt(rssAfterAll, 0)} MiB after ${GENERATIONS} (${fmt(growth * 100, 1)} %)

${verdict(outsideMs / stepMs <= TARGETS.outsideShare)}  work outside onnxruntime ≤ ${TARGETS.outsideShare * 100} % of step time
${verdict(pngMs <= TARGETS.pngMs)}  PNG encoding ≤ ${TARGETS.pngMs} ms
${verdict(growth <= TARGETS.memoryGrowth)}  memory after ${GENERATIONS} within ${TARGETS.memoryGrowth * 100} % of after 10`);
} finally {
  await fs.rm(dir, { recursive: true, force: true });
}
