// DPMSolverMultistepScheduler ("DPM++ 2M"), a port of diffusers' scheduling_dpmsolver_multistep.py for its
// deterministic solvers: DPM-Solver++ (data prediction, the default) and DPM-Solver (noise prediction), first
// or second order, midpoint or Heun. It keeps the previous model output to take second-order steps.
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
  karrasSigmas,
  logSigmas,
  npArange,
  npInterp,
  npLinspace,
  roundHalfEven,
  sigmaToT,
  StepIndex,
  trainSigmas,
  type SigmaScheduler,
} from './sigmas.ts';
import { kernels } from '../kernels/index.ts';
import type { SchedulerConfig } from './types.ts';

const f = Math.fround;

type Algorithm = 'dpmsolver++' | 'dpmsolver';

/** alpha_t, sigma_t and lambda_t = log(alpha_t / sigma_t) of a sigma, in float32 as the torch expressions. */
function alphaSigmaLambda(sigma: number): { alpha: number; sigma: number; lambda: number } {
  const alpha = f(1 / f(Math.sqrt(f(f(sigma * sigma) + 1))));
  const sigmaT = f(sigma * alpha);
  return { alpha, sigma: sigmaT, lambda: f(f(Math.log(alpha)) - f(Math.log(sigmaT))) };
}

export function createDpmpp2mScheduler(config: SchedulerConfig): SigmaScheduler {
  rejectEnabled(
    config,
    [
      'thresholding',
      'variance_type',
      'use_exponential_sigmas',
      'use_beta_sigmas',
      'use_flow_sigmas',
      'use_dynamic_shifting',
      'rescale_betas_zero_snr',
    ],
    'DPMSolverMultistepScheduler',
  );
  const numTrain = configInteger(config, 'num_train_timesteps', 1000, 1);
  const betaSchedule = configValue<string>(config, 'beta_schedule', 'linear');
  const solverOrder = configInteger(config, 'solver_order', 2, 1);
  if (solverOrder !== 1 && solverOrder !== 2) {
    throw new Error(`scheduler config: solver_order must be 1 or 2 for DPM++ 2M, got ${solverOrder}`);
  }
  const predictionType = configChoice(config, 'prediction_type', ['epsilon', 'v_prediction', 'sample'], 'epsilon');
  const algorithmValue = configChoice(
    config,
    'algorithm_type',
    ['dpmsolver++', 'dpmsolver', 'deis', 'sde-dpmsolver++', 'sde-dpmsolver'],
    'dpmsolver++',
  );
  if (algorithmValue.startsWith('sde-')) {
    throw new Error(`scheduler config: algorithm_type ${algorithmValue} (stochastic) is not supported by DPM++ 2M`);
  }
  // A config carried over from DEIS keeps its own names; diffusers maps them to these defaults.
  const algorithm: Algorithm = algorithmValue === 'deis' ? 'dpmsolver++' : (algorithmValue as Algorithm);
  const solverTypeValue = configChoice(
    config,
    'solver_type',
    ['midpoint', 'heun', 'logrho', 'bh1', 'bh2'],
    'midpoint',
  );
  const solverType = solverTypeValue === 'heun' ? 'heun' : 'midpoint';
  const lowerOrderFinal = configValue<boolean>(config, 'lower_order_final', true);
  const eulerAtFinal = configValue<boolean>(config, 'euler_at_final', false);
  const useKarras = configValue<boolean>(config, 'use_karras_sigmas', false);
  const useLuLambdas = configValue<boolean>(config, 'use_lu_lambdas', false);
  const finalSigmasType = configChoice(config, 'final_sigmas_type', ['zero', 'sigma_min'], 'zero');
  const lambdaMinClipped = configValue<number>(config, 'lambda_min_clipped', -Infinity);
  const spacing = configChoice(config, 'timestep_spacing', TIMESTEP_SPACINGS, 'linspace');
  const stepsOffset = configInteger(config, 'steps_offset', 0, 0);
  if (useKarras && useLuLambdas) {
    throw new Error('scheduler config: use_karras_sigmas and use_lu_lambdas cannot both be true');
  }
  if (algorithm === 'dpmsolver' && finalSigmasType === 'zero') {
    // Noise prediction divides by the final sigma; diffusers refuses this combination too.
    throw new Error('scheduler config: final_sigmas_type "zero" needs algorithm_type dpmsolver++; use "sigma_min"');
  }

  const ac = alphasCumprod(betasFor(config));
  const train = trainSigmas(ac);
  const trainLogSigmas = logSigmas(train);
  // The number of training timesteps left after clipping lambda(t) from below (matters for cosine schedules).
  const lambdas = Array.from(ac, (a) => f(f(Math.log(f(Math.sqrt(a)))) - f(Math.log(f(Math.sqrt(f(1 - a)))))));
  const clippedIdx = lambdas.reverse().findIndex((l) => l >= lambdaMinClipped);
  const lastTimestep = numTrain - (clippedIdx === -1 ? numTrain : clippedIdx);

  let timesteps: number[] = [];
  let sigmas = new Float32Array(0);
  const index = new StepIndex();
  let modelOutputs: (Float32Array | null)[] = [];
  let lowerOrderNums = 0;

  // Unlike the Euler family, DPM-Solver spaces n + 1 integer timesteps and drops the last one (t = 0).
  function dpmTimesteps(n: number): number[] {
    switch (spacing) {
      case 'linspace':
        return Array.from(npLinspace(0, lastTimestep - 1, n + 1), roundHalfEven).reverse().slice(0, n);
      case 'leading': {
        const stepRatio = Math.floor(lastTimestep / (n + 1));
        return Array.from({ length: n }, (_, i) => (n - i) * stepRatio + stepsOffset);
      }
      case 'trailing':
        return Array.from(npArange(lastTimestep, 0, -numTrain / n), (t) => roundHalfEven(t) - 1);
    }
  }

  function convertModelOutput(modelOutput: Float32Array, sample: Float32Array, sigma: number): Float32Array {
    if (predictionType === 'sample' && algorithm === 'dpmsolver++') return modelOutput;
    if (predictionType === 'epsilon' && algorithm === 'dpmsolver') return modelOutput;
    const { alpha, sigma: s } = alphaSigmaLambda(sigma);
    // Stable Diffusion's configuration, four lanes at a time where WebAssembly SIMD runs (kernels/).
    if (algorithm === 'dpmsolver++' && predictionType === 'epsilon') return kernels.dpmDataPrediction(sample, modelOutput, s, alpha);
    const out = new Float32Array(sample.length);
    for (let k = 0; k < out.length; k++) {
      const x = sample[k]!;
      const m = modelOutput[k]!;
      if (algorithm === 'dpmsolver++') {
        // x0 prediction from v (epsilon took the kernel above)
        out[k] = f(alpha * x) - f(s * m);
      } else {
        // noise prediction
        out[k] = predictionType === 'sample' ? f(x - f(alpha * m)) / s : f(alpha * m) + f(s * x);
      }
    }
    return out;
  }

  function firstOrderUpdate(m0: Float32Array, sample: Float32Array, i: number): Float32Array {
    const t = alphaSigmaLambda(sigmas[i + 1]!);
    const s0 = alphaSigmaLambda(sigmas[i]!);
    const h = f(t.lambda - s0.lambda);
    const [a, b] =
      algorithm === 'dpmsolver++'
        ? [f(t.sigma / s0.sigma), f(t.alpha * f(f(Math.exp(-h)) - 1))]
        : [f(t.alpha / s0.alpha), f(t.sigma * f(f(Math.exp(h)) - 1))];
    return kernels.dpmFirstOrder(sample, m0, a, b);
  }

  function secondOrderUpdate(m0: Float32Array, m1: Float32Array, sample: Float32Array, i: number): Float32Array {
    const t = alphaSigmaLambda(sigmas[i + 1]!);
    const s0 = alphaSigmaLambda(sigmas[i]!);
    const s1 = alphaSigmaLambda(sigmas[i - 1]!);
    const h = f(t.lambda - s0.lambda);
    const r0 = f(f(s0.lambda - s1.lambda) / h);
    const invR0 = f(1 / r0);
    let a: number;
    let b: number;
    let c: number; // x_t = a * sample - b * D0 - c * D1
    if (algorithm === 'dpmsolver++') {
      const em1 = f(f(Math.exp(-h)) - 1);
      a = f(t.sigma / s0.sigma);
      b = f(t.alpha * em1);
      c = solverType === 'midpoint' ? f(0.5 * b) : -f(t.alpha * f(f(em1 / h) + 1));
    } else {
      const em1 = f(f(Math.exp(h)) - 1);
      a = f(t.alpha / s0.alpha);
      b = f(t.sigma * em1);
      c = solverType === 'midpoint' ? f(0.5 * b) : f(t.sigma * f(f(em1 / h) - 1));
    }
    return kernels.dpmSecondOrder(sample, m0, m1, { a, b, c, invR0 });
  }

  return {
    get timesteps() {
      return timesteps;
    },
    get sigmas() {
      return sigmas;
    },
    initNoiseSigma: 1,

    setTimesteps(numInferenceSteps: number) {
      checkStepCount(numInferenceSteps, numTrain);
      let ts = dpmTimesteps(numInferenceSteps);
      let schedule: ArrayLike<number>;
      if (useKarras || useLuLambdas) {
        if (useKarras) {
          schedule = karrasSigmas(train[0]!, train[numTrain - 1]!, numInferenceSteps);
        } else {
          // Uniform steps in log sigma (Lu et al.'s uniform logSNR) between the ends of the training schedule.
          const logMax = trainLogSigmas[numTrain - 1]!;
          const logMin = trainLogSigmas[0]!;
          schedule = npLinspace(0, 1, numInferenceSteps).map((r) => Math.exp(logMax + r * (logMin - logMax)));
        }
        const continuous = Array.from(schedule, (s) => sigmaToT(s, trainLogSigmas));
        ts = betaSchedule === 'squaredcos_cap_v2' ? continuous.map(Math.trunc) : continuous.map(roundHalfEven);
      } else {
        schedule = ts.map((t) => npInterp(t, train));
      }
      const sigmaLast = finalSigmasType === 'sigma_min' ? train[0]! : 0;
      sigmas = Float32Array.from([...Array.from(schedule), sigmaLast]);
      timesteps = ts;
      index.reset();
      modelOutputs = new Array<Float32Array | null>(solverOrder).fill(null);
      lowerOrderNums = 0;
    },

    scaleModelInput(sample: Float32Array): Float32Array {
      return sample;
    },

    step(modelOutput: Float32Array, t: number, sample: Float32Array): Float32Array {
      if (timesteps.length === 0) throw new Error('DPMSolverMultistepScheduler: call setTimesteps before step');
      const i = index.at(timesteps, t, 'last');
      const n = timesteps.length;
      // First order on the last step keeps few-step schedules stable, and a zero final sigma needs it.
      // (diffusers' lower_order_second only changes third-order steps, which this port does not take.)
      const lowerOrderFinalStep =
        i === n - 1 && (eulerAtFinal || (lowerOrderFinal && n < 15) || finalSigmasType === 'zero');
      const converted = convertModelOutput(modelOutput, sample, sigmas[i]!);
      modelOutputs.shift();
      modelOutputs.push(converted);
      const prev =
        solverOrder === 1 || lowerOrderNums < 1 || lowerOrderFinalStep
          ? firstOrderUpdate(converted, sample, i)
          : secondOrderUpdate(converted, modelOutputs[modelOutputs.length - 2]!, sample, i);
      if (lowerOrderNums < solverOrder) lowerOrderNums++;
      index.advance();
      return prev;
    },
  };
}
