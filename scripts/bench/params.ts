// The generation the pipeline benchmarks run (bench:gpu, bench:sd15's child): one image of a
// square size with DDIM and guidance 7.5 from seed 1, as ORT's SD 1.5 figures are taken.
import type { GenerationParams } from '../../src/core/request.ts';

export function ddimParams(prompt: string, size: number, steps: number): GenerationParams {
  return {
    prompt,
    negative_prompt: '',
    num_inference_steps: steps,
    guidance_scale: 7.5,
    seed: 1,
    width: size,
    height: size,
    scheduler: 'ddim',
    num_images: 1,
  };
}
