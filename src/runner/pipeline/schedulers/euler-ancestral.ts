// EulerAncestralDiscreteScheduler ("Euler a"), a port of diffusers' scheduling_euler_ancestral_discrete.py:
// each step goes down to sigma_down with Euler's method, then adds fresh noise of size sigma_up drawn from the
// generator, so that the step lands on the next sigma in distribution.
import type { Generator } from '../rng.ts';
import { kernels } from '../kernels/index.ts';
import {
  alphasCumprod,
  betasFor,
  configChoice,
  configInteger,
  configValue,
  rejectEnabled,
  TIMESTEP_SPACINGS,
} from './betas.ts';
import {
  checkStepCount,
  eulerInitNoiseSigma,
  npInterp,
  scaleBySigma,
  spacedTimesteps,
  StepIndex,
  trainingSchedule,
  trainSigmas,
  type SigmaScheduler,
} from './sigmas.ts';
import type { SchedulerConfig } from './types.ts';

const f = Math.fround;

/** The ancestral split of going from sigmaFrom to sigmaTo: deterministic part down to sigmaDown, noise sigmaUp. */
export function ancestralSigmas(sigmaFrom: number, sigmaTo: number): { sigmaUp: number; sigmaDown: number } {
  const from2 = f(sigmaFrom * sigmaFrom);
  const to2 = f(sigmaTo * sigmaTo);
  const sigmaUp = f(Math.sqrt(f(f(to2 * f(from2 - to2)) / from2)));
  const sigmaDown = f(Math.sqrt(f(to2 - f(sigmaUp * sigmaUp))));
  return { sigmaUp, sigmaDown };
}

export function createEulerAncestralScheduler(config: SchedulerConfig): SigmaScheduler {
  rejectEnabled(config, ['rescale_betas_zero_snr'], 'EulerAncestralDiscreteScheduler');
  const numTrain = configInteger(config, 'num_train_timesteps', 1000, 1);
  // diffusers raises NotImplementedError for "sample" here too.
  const predictionType = configChoice(config, 'prediction_type', ['epsilon', 'v_prediction'], 'epsilon');
  const spacing = configChoice(config, 'timestep_spacing', TIMESTEP_SPACINGS, 'linspace');
  const stepsOffset = configInteger(config, 'steps_offset', 0, 0);

  const train = trainSigmas(alphasCumprod(betasFor(config)));
  let { timesteps, sigmas } = trainingSchedule(train);
  const index = new StepIndex();

  return {
    get timesteps() {
      return timesteps;
    },
    get sigmas() {
      return sigmas;
    },
    get initNoiseSigma() {
      return eulerInitNoiseSigma(sigmas, spacing);
    },

    setTimesteps(numInferenceSteps: number) {
      checkStepCount(numInferenceSteps, numTrain);
      const ts = spacedTimesteps(spacing, numTrain, numInferenceSteps, stepsOffset);
      sigmas = Float32Array.from([...Array.from(ts, (t) => npInterp(t, train)), 0]);
      timesteps = Array.from(ts);
      index.reset();
    },

    scaleModelInput(sample: Float32Array, t: number): Float32Array {
      return scaleBySigma(sample, sigmas[index.at(timesteps, t, 'throw')]!);
    },

    step(modelOutput: Float32Array, t: number, sample: Float32Array, generator?: Generator): Float32Array {
      if (!generator) throw new Error('EulerAncestralDiscreteScheduler needs a generator for its noise');
      const i = index.at(timesteps, t, 'throw');
      const sigma = sigmas[i]!;
      const { sigmaUp, sigmaDown } = ancestralSigmas(sigma, sigmas[i + 1]!);
      const cOut = f(-sigma / f(Math.sqrt(f(f(sigma * sigma) + 1))));
      const cSkipDenominator = f(f(sigma * sigma) + 1);
      const dt = f(sigmaDown - sigma);
      // Drawn on every step, the last one included (where sigma_up is 0), so the generator's stream stays
      // aligned with diffusers' for the same seed.
      const noise = generator.randn(sample.length);
      if (predictionType === 'epsilon') {
        // Stable Diffusion's configuration: the epsilon branch of the loop below, four lanes at a time
        // where WebAssembly SIMD runs (kernels/).
        const prev = kernels.eulerAncestralEpsilon(sample, modelOutput, noise, { sigma, dt, sigmaUp });
        index.advance();
        return prev;
      }
      const prev = new Float32Array(sample.length);
      for (let k = 0; k < sample.length; k++) {
        const x = sample[k]!;
        const m = modelOutput[k]!;
        const pred = f(f(m * cOut) + f(x / cSkipDenominator)); // v_prediction
        const derivative = f(f(x - pred) / sigma);
        prev[k] = f(x + f(derivative * dt)) + f(noise[k]! * sigmaUp);
      }
      index.advance();
      return prev;
    },
  };
}
