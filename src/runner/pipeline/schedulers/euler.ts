// EulerDiscreteScheduler ("Euler"): Algorithm 2 of Karras et al. (2022) on the model's discrete sigmas, a port
// of diffusers' scheduling_euler_discrete.py. Stepping is deterministic unless s_churn > 0, when it draws
// from the generator as diffusers does.
import type { Generator } from '../rng.ts';
import { kernels } from '../kernels/index.ts';
import {
  alphasCumprod,
  betasFor,
  configChoice,
  configInteger,
  configValue,
  linspace32,
  rejectEnabled,
  TIMESTEP_SPACINGS,
} from './betas.ts';
import {
  checkStepCount,
  configOptionalNumber,
  eulerInitNoiseSigma,
  karrasSigmas,
  logSigmas,
  npInterp,
  scaleBySigma,
  sigmaToT,
  spacedTimesteps,
  StepIndex,
  trainingSchedule,
  trainSigmas,
  type SigmaScheduler,
} from './sigmas.ts';
import type { SchedulerConfig } from './types.ts';

/** The stochastic "churn" of Karras' Algorithm 2, which diffusers takes as `step` arguments (off by default). */
export interface EulerChurn {
  sChurn?: number;
  sTmin?: number;
  sTmax?: number;
  sNoise?: number;
}

const f = Math.fround;

export function createEulerScheduler(config: SchedulerConfig, churn: EulerChurn = {}): SigmaScheduler {
  rejectEnabled(
    config,
    ['rescale_betas_zero_snr', 'use_exponential_sigmas', 'use_beta_sigmas'],
    'EulerDiscreteScheduler',
  );
  configChoice(config, 'timestep_type', ['discrete'], 'discrete');
  const numTrain = configInteger(config, 'num_train_timesteps', 1000, 1);
  const predictionType = configChoice(config, 'prediction_type', ['epsilon', 'v_prediction', 'sample'], 'epsilon');
  const interpolation = configChoice(config, 'interpolation_type', ['linear', 'log_linear'], 'linear');
  const useKarras = configValue<boolean>(config, 'use_karras_sigmas', false);
  const sigmaMinConfig = configOptionalNumber(config, 'sigma_min');
  const sigmaMaxConfig = configOptionalNumber(config, 'sigma_max');
  const spacing = configChoice(config, 'timestep_spacing', TIMESTEP_SPACINGS, 'linspace');
  const stepsOffset = configInteger(config, 'steps_offset', 0, 0);
  const finalSigmasType = configChoice(config, 'final_sigmas_type', ['zero', 'sigma_min'], 'zero');
  const { sChurn = 0, sTmin = 0, sTmax = Infinity, sNoise = 1 } = churn;

  const train = trainSigmas(alphasCumprod(betasFor(config)));
  const trainLogSigmas = logSigmas(train);
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
      let ts = spacedTimesteps(spacing, numTrain, numInferenceSteps, stepsOffset);
      let schedule: ArrayLike<number>;
      if (interpolation === 'linear') {
        schedule = Float64Array.from(ts, (t) => npInterp(t, train));
      } else {
        // As in diffusers, log_linear yields numInferenceSteps + 1 sigmas (float32 linspace, then exp).
        const logs = linspace32(f(Math.log(train[numTrain - 1]!)), f(Math.log(train[0]!)), numInferenceSteps + 1);
        schedule = logs.map((l) => Math.exp(l));
      }
      if (useKarras) {
        const karras = karrasSigmas(
          sigmaMinConfig ?? schedule[schedule.length - 1]!,
          sigmaMaxConfig ?? schedule[0]!,
          numInferenceSteps,
        );
        ts = Float32Array.from(karras, (s) => sigmaToT(s, trainLogSigmas));
        schedule = karras;
      }
      const sigmaLast = finalSigmasType === 'sigma_min' ? train[0]! : 0;
      sigmas = Float32Array.from([...Array.from(schedule), sigmaLast]);
      timesteps = Array.from(ts);
      index.reset();
    },

    scaleModelInput(sample: Float32Array, t: number): Float32Array {
      return scaleBySigma(sample, sigmas[index.at(timesteps, t, 'throw')]!);
    },

    affineStep(t: number) {
      // With churn the step adds noise; v-prediction and sample prediction mix x into the prediction.
      if (predictionType !== 'epsilon' || sChurn > 0) return undefined;
      const i = index.at(timesteps, t, 'throw');
      const sigma = sigmas[i]!;
      index.advance();
      // Without churn sigma_hat is sigma, and x + ((x − (x − sigma·m)) / sigma)·dt is x + dt·m.
      return {
        sampleDivisor: f(Math.sqrt(f(f(sigma * sigma) + 1))),
        sampleCoeff: 1,
        noiseCoeff: f(sigmas[i + 1]! - sigma),
      };
    },

    step(modelOutput: Float32Array, t: number, sample: Float32Array, generator?: Generator): Float32Array {
      const i = index.at(timesteps, t, 'throw');
      const sigma = sigmas[i]!;
      const gamma = sTmin <= sigma && sigma <= sTmax ? Math.min(sChurn / (sigmas.length - 1), 2 ** 0.5 - 1) : 0;
      const sigmaHat = f(sigma * f(gamma + 1));
      let x = sample;
      if (gamma > 0) {
        if (!generator) throw new Error('EulerDiscreteScheduler with s_churn > 0 needs a generator');
        const noise = generator.randn(sample.length);
        const noiseScale = f(Math.sqrt(f(f(sigmaHat * sigmaHat) - f(sigma * sigma))));
        x = sample.map((v, k) => v + f(f(noise[k]! * sNoise) * noiseScale));
      }
      // v-prediction's c_out and c_skip use sigma, not sigma_hat, exactly as diffusers does.
      const cOut = f(-sigma / f(Math.sqrt(f(f(sigma * sigma) + 1))));
      const cSkipDenominator = f(f(sigma * sigma) + 1);
      const dt = f(sigmas[i + 1]! - sigmaHat);
      if (predictionType === 'epsilon') {
        // Stable Diffusion's configuration: the epsilon branch of the loop below, four lanes at a time
        // where WebAssembly SIMD runs (kernels/).
        const prev = kernels.eulerEpsilon(x, modelOutput, sigmaHat, dt);
        index.advance();
        return prev;
      }
      const prev = new Float32Array(x.length);
      for (let k = 0; k < x.length; k++) {
        const xk = x[k]!;
        const m = modelOutput[k]!;
        let pred: number;
        if (predictionType === 'v_prediction') pred = f(f(m * cOut) + f(xk / cSkipDenominator));
        else pred = m;
        const derivative = f(f(xk - pred) / sigmaHat);
        prev[k] = xk + f(derivative * dt);
      }
      index.advance();
      return prev;
    },
  };
}
