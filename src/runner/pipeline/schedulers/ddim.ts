// DDIM (Song et al., arXiv:2010.02502), ported from diffusers' DDIMScheduler: one model call per step,
// deterministic at eta = 0; eta > 0 adds the generator's noise scaled by the DDPM-like variance.
// Element math is rounded to float32 after every operation, as torch computes it on float32 tensors.
import type { Generator } from '../rng.ts';
import {
  alphaSchedule,
  alphasCumprod,
  betasFor,
  configChoice,
  configInteger,
  configValue,
  discreteTimesteps,
  rejectEnabled,
  TIMESTEP_SPACINGS,
} from './betas.ts';
import { kernels } from '../kernels/index.ts';
import type { Scheduler, SchedulerConfig } from './types.ts';

const f = Math.fround;

export function createDdimScheduler(config: SchedulerConfig): Scheduler {
  // Both need more than this port supports: thresholding a per-image quantile (the flat tensors carry no
  // batch shape), zero-SNR rescaling a different beta schedule. Failing beats silently ignoring them.
  rejectEnabled(config, ['thresholding', 'rescale_betas_zero_snr'], 'DDIMScheduler');
  const numTrainTimesteps = configInteger(config, 'num_train_timesteps', 1000, 1);
  const alphas = alphaSchedule(alphasCumprod(betasFor(config)), configValue(config, 'set_alpha_to_one', true), 'ddim');
  const clipSample = configValue(config, 'clip_sample', true);
  const clipRange = f(configValue(config, 'clip_sample_range', 1.0));
  const stepsOffset = configInteger(config, 'steps_offset', 0, 0);
  const predictionType = configChoice(config, 'prediction_type', ['epsilon', 'v_prediction', 'sample'], 'epsilon');
  const spacing = configChoice(config, 'timestep_spacing', TIMESTEP_SPACINGS, 'leading');
  // Not a diffusers config key: diffusers passes eta to every step() call; here it is fixed per scheduler.
  const eta = configValue(config, 'eta', 0);
  if (!Number.isFinite(eta) || eta < 0) {
    throw new Error(`scheduler config: eta must be a number >= 0, got ${JSON.stringify(eta)}`);
  }

  let numInferenceSteps = 0;
  let timesteps: number[] = [];

  /** Formula (12)'s float32 coefficients at `t`, and sigma_t(eta) of formula (16). */
  const coefficients = (t: number) => {
    if (numInferenceSteps === 0) throw new Error('ddim scheduler: call setTimesteps before step');
    // diffusers steps back by the leading ratio whatever the spacing, so trailing/linspace schedules
    // whose gaps differ from it use this prev timestep too.
    const prevT = t - Math.floor(numTrainTimesteps / numInferenceSteps);
    const alphaProd = alphas.at(t);
    const alphaProdPrev = alphas.prev(prevT);
    const betaProd = f(1 - alphaProd);
    const betaProdPrev = f(1 - alphaProdPrev);
    const variance = f(f(betaProdPrev / betaProd) * f(1 - f(alphaProd / alphaProdPrev)));
    const stdDev = f(f(eta) * f(Math.sqrt(variance)));
    return {
      sqrtBeta: f(Math.sqrt(betaProd)),
      sqrtAlpha: f(Math.sqrt(alphaProd)),
      sqrtAlphaPrev: f(Math.sqrt(alphaProdPrev)),
      directionCoeff: f(Math.sqrt(f(betaProdPrev - f(stdDev * stdDev)))),
      stdDev,
    };
  };

  return {
    get timesteps() {
      return timesteps;
    },
    initNoiseSigma: 1,

    setTimesteps(n) {
      if (!Number.isInteger(n) || n < 1 || n > numTrainTimesteps) {
        throw new RangeError(`ddim scheduler: num_inference_steps must be an integer in [1, ${numTrainTimesteps}], got ${n}`);
      }
      numInferenceSteps = n;
      timesteps = discreteTimesteps(spacing, numTrainTimesteps, n, stepsOffset);
    },

    scaleModelInput: (sample) => sample,

    affineStep(t) {
      if (predictionType !== 'epsilon' || clipSample || eta > 0) return undefined;
      // sqrtAlphaPrev·(x − sqrtBeta·m) / sqrtAlpha + directionCoeff·m, gathered per operand.
      const { sqrtBeta, sqrtAlpha, sqrtAlphaPrev, directionCoeff } = coefficients(t);
      return {
        sampleDivisor: 1,
        sampleCoeff: f(sqrtAlphaPrev / sqrtAlpha),
        noiseCoeff: f(directionCoeff - (sqrtAlphaPrev * sqrtBeta) / sqrtAlpha),
      };
    },

    step(modelOutput, t, sample, generator) {
      const { sqrtBeta, sqrtAlpha, sqrtAlphaPrev, directionCoeff, stdDev } = coefficients(t);
      const noise = eta > 0 ? drawNoise(generator, sample.length) : undefined;

      if (predictionType === 'epsilon' && !clipSample && !noise) {
        // Stable Diffusion's configuration, with no per-element branches: the same arithmetic as
        // the general loop below, four lanes at a time where WebAssembly SIMD runs (kernels/).
        return kernels.ddimEpsilon(sample, modelOutput, { sqrtBeta, sqrtAlpha, sqrtAlphaPrev, directionCoeff });
      }
      const prev = new Float32Array(sample.length);
      for (let i = 0; i < sample.length; i++) {
        const x = sample[i]!;
        const m = modelOutput[i]!;
        let x0: number;
        let eps: number;
        switch (predictionType) {
          case 'epsilon':
            x0 = f(f(x - f(sqrtBeta * m)) / sqrtAlpha);
            eps = m;
            break;
          case 'sample':
            x0 = m;
            eps = f(f(x - f(sqrtAlpha * x0)) / sqrtBeta);
            break;
          case 'v_prediction':
            x0 = f(f(sqrtAlpha * x) - f(sqrtBeta * m));
            eps = f(f(sqrtAlpha * m) + f(sqrtBeta * x));
            break;
        }
        if (clipSample) x0 = Math.min(Math.max(x0, -clipRange), clipRange);
        // Formula (12): x_{t-1} = sqrt(a_prev) x0 + "direction pointing to x_t" (+ sigma_t z).
        let out = f(f(sqrtAlphaPrev * x0) + f(directionCoeff * eps));
        if (noise) out = f(out + f(stdDev * noise[i]!));
        prev[i] = out;
      }
      return prev;
    },
  };
}

function drawNoise(generator: Generator | undefined, count: number): Float32Array {
  if (!generator) throw new Error('ddim scheduler: eta > 0 needs a generator for its variance noise');
  return generator.randn(count);
}
