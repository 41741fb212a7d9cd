// Latent Consistency Model sampling (Luo et al., arXiv:2310.04378), ported from diffusers' LCMScheduler:
// every step predicts the clean sample through the consistency boundary condition (c_skip, c_out), then
// re-noises it to the next timestep with fresh noise from the generator; the last step returns it as is.
// Element math is rounded to float32 after every operation, as torch computes it on float32 tensors.
import type { Generator } from '../rng.ts';
import { kernels } from '../kernels/index.ts';
import { alphaSchedule, alphasCumprod, betasFor, configChoice, configInteger, configValue, rejectEnabled } from './betas.ts';
import type { Scheduler, SchedulerConfig } from './types.ts';

const f = Math.fround;

/** The consistency models' sigma_data; diffusers fixes it rather than reading it from the config. */
const SIGMA_DATA = 0.5;

export function createLcmScheduler(config: SchedulerConfig): Scheduler {
  rejectEnabled(config, ['thresholding', 'rescale_betas_zero_snr'], 'LCMScheduler');
  const numTrainTimesteps = configInteger(config, 'num_train_timesteps', 1000, 1);
  // LCM's beta defaults are Stable Diffusion's, unlike the other schedulers'.
  const alphas = alphaSchedule(
    alphasCumprod(betasFor({ beta_start: 0.00085, beta_end: 0.012, beta_schedule: 'scaled_linear', ...config })),
    configValue(config, 'set_alpha_to_one', true),
    'lcm',
  );
  const originalInferenceSteps = configInteger(config, 'original_inference_steps', 50, 1);
  if (originalInferenceSteps > numTrainTimesteps) {
    throw new Error(
      `scheduler config: original_inference_steps (${originalInferenceSteps}) cannot exceed num_train_timesteps (${numTrainTimesteps})`,
    );
  }
  const clipSample = configValue(config, 'clip_sample', false);
  const clipRange = f(configValue(config, 'clip_sample_range', 1.0));
  const predictionType = configChoice(config, 'prediction_type', ['epsilon', 'v_prediction', 'sample'], 'epsilon');
  const timestepScaling = configValue(config, 'timestep_scaling', 10.0);
  if (!Number.isFinite(timestepScaling)) {
    throw new Error(`scheduler config: timestep_scaling must be a finite number, got ${JSON.stringify(timestepScaling)}`);
  }
  // steps_offset and timestep_spacing are in LCMScheduler's config too, but its schedule ignores them.

  let timesteps: number[] = [];
  let stepIndex: number | undefined;

  /** Where in the schedule `t` sits; a repeated timestep resolves to its second place, as in diffusers. */
  const indexOf = (t: number): number => {
    const first = timesteps.indexOf(t);
    if (first < 0) throw new Error(`lcm scheduler: timestep ${t} is not in the current schedule`);
    const second = timesteps.indexOf(t, first + 1);
    return second < 0 ? first : second;
  };

  return {
    get timesteps() {
      return timesteps;
    },
    initNoiseSigma: 1,

    setTimesteps(n) {
      if (!Number.isInteger(n) || n < 1 || n > originalInferenceSteps) {
        throw new RangeError(
          `lcm scheduler: num_inference_steps must be an integer in [1, original_inference_steps = ${originalInferenceSteps}], got ${n}`,
        );
      }
      // The distillation schedule (every k-th training timestep, ending at T - 1), then n of its entries
      // at evenly spaced indices: np.floor(np.linspace(0, len, n, endpoint=False)).
      const k = Math.floor(numTrainTimesteps / originalInferenceSteps);
      const origin = Array.from({ length: originalInferenceSteps }, (_, i) => (originalInferenceSteps - i) * k - 1);
      const spacing = origin.length / n;
      timesteps = Array.from({ length: n }, (_, i) => origin[Math.floor(i * spacing)]!);
      stepIndex = undefined;
    },

    scaleModelInput: (sample) => sample,

    step(modelOutput, t, sample, generator) {
      if (timesteps.length === 0) throw new Error('lcm scheduler: call setTimesteps before step');
      stepIndex ??= indexOf(t);
      const isLast = stepIndex === timesteps.length - 1;
      const prevT = isLast ? t : timesteps[stepIndex + 1]!;
      const alphaProd = alphas.at(t);
      const alphaProdPrev = alphas.prev(prevT);
      const sqrtAlpha = f(Math.sqrt(alphaProd));
      const sqrtBeta = f(Math.sqrt(f(1 - alphaProd)));

      // Boundary condition: c_skip -> 1 and c_out -> 0 as t -> 0, so the model is the identity at t = 0.
      const scaledT = f(f(t) * f(timestepScaling));
      const scaledSquarePlus = f(f(scaledT * scaledT) + f(SIGMA_DATA ** 2));
      const cSkip = f(f(SIGMA_DATA ** 2) / scaledSquarePlus);
      const cOut = f(scaledT / f(Math.sqrt(scaledSquarePlus)));

      // No noise after the last step, hence none at all for one-step sampling.
      const noise = isLast ? undefined : drawNoise(generator, sample.length);
      const sqrtAlphaPrev = f(Math.sqrt(alphaProdPrev));
      const sqrtBetaPrev = f(Math.sqrt(f(1 - alphaProdPrev)));

      if (predictionType === 'epsilon' && !clipSample) {
        // Stable Diffusion's configuration: the epsilon branch of the loop below, four lanes at a time
        // where WebAssembly SIMD runs (kernels/).
        const prev = kernels.lcmEpsilon(sample, modelOutput, noise, { sqrtBeta, sqrtAlpha, cOut, cSkip, sqrtAlphaPrev, sqrtBetaPrev });
        stepIndex++;
        return prev;
      }
      const out = new Float32Array(sample.length);
      for (let i = 0; i < sample.length; i++) {
        const x = sample[i]!;
        const m = modelOutput[i]!;
        let x0: number;
        switch (predictionType) {
          case 'epsilon':
            x0 = f(f(x - f(sqrtBeta * m)) / sqrtAlpha);
            break;
          case 'sample':
            x0 = m;
            break;
          case 'v_prediction':
            x0 = f(f(sqrtAlpha * x) - f(sqrtBeta * m));
            break;
        }
        if (clipSample) x0 = Math.min(Math.max(x0, -clipRange), clipRange);
        const denoised = f(f(cOut * x0) + f(cSkip * x));
        out[i] = noise ? f(f(sqrtAlphaPrev * denoised) + f(sqrtBetaPrev * noise[i]!)) : denoised;
      }
      stepIndex++;
      return out;
    },
  };
}

function drawNoise(generator: Generator | undefined, count: number): Float32Array {
  if (!generator) throw new Error('lcm scheduler: multistep sampling needs a generator for the noise between steps');
  return generator.randn(count);
}
