// PNDM (Liu et al., arXiv:2202.09778), ported from diffusers' PNDMScheduler: pseudo Runge-Kutta warm-up
// steps (unless skip_prk_steps) then linear multistep (PLMS) steps over the model's past outputs.
// Stable Diffusion's config skips the Runge-Kutta part; its PLMS warm-up then runs the second timestep
// twice (a Heun-like correction), which is why that timestep appears twice in `timesteps`.
// Element math is rounded to float32 after every operation, as torch computes it on float32 tensors.
import {
  alphaSchedule,
  alphasCumprod,
  betasFor,
  configChoice,
  configInteger,
  configValue,
  discreteTimesteps,
  TIMESTEP_SPACINGS,
} from './betas.ts';
import { kernels } from '../kernels/index.ts';
import { combine, plmsNoise, plmsRepeatNoise } from './plms.ts';
import type { Scheduler, SchedulerConfig } from './types.ts';

const f = Math.fround;

/** The order of the linear multistep formula, and the number of Runge-Kutta warm-up steps it needs. */
const PNDM_ORDER = 4;

export function createPndmScheduler(config: SchedulerConfig): Scheduler {
  const numTrainTimesteps = configInteger(config, 'num_train_timesteps', 1000, 1);
  const alphas = alphaSchedule(alphasCumprod(betasFor(config)), configValue(config, 'set_alpha_to_one', false), 'pndm');
  const skipPrkSteps = configValue(config, 'skip_prk_steps', false);
  const stepsOffset = configInteger(config, 'steps_offset', 0, 0);
  const predictionType = configChoice(config, 'prediction_type', ['epsilon', 'v_prediction'], 'epsilon');
  const spacing = configChoice(config, 'timestep_spacing', TIMESTEP_SPACINGS, 'leading');

  let numInferenceSteps = 0;
  let prkTimesteps: number[] = [];
  let timesteps: number[] = [];
  // Running state, as diffusers keeps it: `counter` counts step() calls since setTimesteps, `ets` the
  // model outputs the multistep formula combines (only the last PNDM_ORDER are ever read), and the
  // Runge-Kutta accumulator and the sample every sub-step of one Runge-Kutta step starts from. Model
  // outputs are kept by reference, as diffusers keeps its tensors: callers pass a fresh array each step.
  let counter = 0;
  let ets: Float32Array[] = [];
  let curModelOutput: Float32Array | undefined;
  let curSample: Float32Array | undefined;

  /** Formula (9)'s coefficients for moving from timestep `t` to `prevT`. */
  const coefficients = (t: number, prevT: number) => {
    const alphaProd = alphas.at(t);
    const alphaProdPrev = alphas.prev(prevT);
    const betaProd = f(1 - alphaProd);
    const betaProdPrev = f(1 - alphaProdPrev);
    const sqrtAlpha = f(Math.sqrt(alphaProd));
    const sqrtBeta = f(Math.sqrt(betaProd));
    const sampleCoeff = f(Math.sqrt(f(alphaProdPrev / alphaProd)));
    const denomCoeff = f(
      f(alphaProd * f(Math.sqrt(betaProdPrev))) + f(Math.sqrt(f(f(alphaProd * betaProd) * alphaProdPrev))),
    );
    const alphaDiff = f(alphaProdPrev - alphaProd);
    return { sqrtAlpha, sqrtBeta, sampleCoeff, denomCoeff, alphaDiff };
  };

  /** Formula (9): moves `sample` from timestep `t` to `prevT` along the noise estimate `modelOutput`. */
  const prevSample = (sample: Float32Array, t: number, prevT: number, modelOutput: Float32Array): Float32Array => {
    const { sqrtAlpha, sqrtBeta, sampleCoeff, denomCoeff, alphaDiff } = coefficients(t, prevT);
    const out = new Float32Array(sample.length);
    for (let i = 0; i < sample.length; i++) {
      const x = sample[i]!;
      let eps = modelOutput[i]!;
      if (predictionType === 'v_prediction') eps = f(f(sqrtAlpha * eps) + f(sqrtBeta * x));
      out[i] = f(f(sampleCoeff * x) - f(f(alphaDiff * eps) / denomCoeff));
    }
    return out;
  };

  /**
   * One of the four sub-steps of a Runge-Kutta step from prk_timesteps[4k]: all four start from that
   * step's first sample, and the last moves it with the 1/6, 1/3, 1/3, 1/6 mix of the four model outputs.
   */
  const stepPrk = (modelOutput: Float32Array, t: number, sample: Float32Array): Float32Array => {
    const diffToPrev = counter % 2 ? 0 : Math.floor(Math.floor(numTrainTimesteps / numInferenceSteps) / 2);
    const prevT = t - diffToPrev;
    const fromT = prkTimesteps[Math.floor(counter / 4) * 4]!;
    let eps = modelOutput;
    switch (counter % 4) {
      case 0:
        curModelOutput = scaled(1 / 6, modelOutput);
        pushEt(modelOutput);
        curSample = sample;
        break;
      case 1:
      case 2:
        curModelOutput = addScaled(curModelOutput!, 1 / 3, modelOutput);
        break;
      case 3:
        eps = addScaled(curModelOutput!, 1 / 6, modelOutput);
        curModelOutput = undefined;
        break;
    }
    counter++;
    return prevSample(curSample ?? sample, fromT, prevT, eps);
  };

  const stepPlms = (modelOutput: Float32Array, t: number, sample: Float32Array): Float32Array => {
    if (!skipPrkSteps && ets.length < 3) {
      throw new Error('pndm scheduler: linear multistep steps need the Runge-Kutta steps to run first');
    }
    const ratio = Math.floor(numTrainTimesteps / numInferenceSteps);
    let fromT = t;
    let prevT = t - ratio;
    // Without Runge-Kutta warm-up, the second call repeats the first step (same timesteps, same starting
    // sample) with the average of both model outputs; its own output is not kept in `ets`.
    if (counter !== 1) pushEt(modelOutput);
    else {
      prevT = t;
      fromT = t + ratio;
    }
    // The first step keeps its starting sample; the repeated one starts from it again.
    const repeat = ets.length === 1 && counter === 1;
    if (ets.length === 1 && counter === 0) curSample = sample;
    let x = sample;
    if (repeat) {
      x = curSample!;
      curSample = undefined;
    }
    counter++;
    const newest = ets[ets.length - 1]!;
    if (predictionType === 'epsilon') {
      // Stable Diffusion's configuration: the noise estimate and formula (9) in one pass, four
      // lanes at a time where WebAssembly SIMD runs (kernels/).
      const c = coefficients(fromT, prevT);
      return repeat ? kernels.plmsRepeat(x, modelOutput, newest, c) : kernels.plms(x, ets.slice(-PNDM_ORDER).reverse(), c);
    }
    const eps = repeat ? plmsRepeatNoise(modelOutput, newest) : plmsNoise(ets.slice(-PNDM_ORDER).reverse());
    return prevSample(x, fromT, prevT, eps);
  };

  const pushEt = (modelOutput: Float32Array) => {
    ets.push(modelOutput);
    if (ets.length > PNDM_ORDER) ets.shift();
  };

  return {
    get timesteps() {
      return timesteps;
    },
    initNoiseSigma: 1,

    setTimesteps(n) {
      if (!Number.isInteger(n) || n < 1 || n > numTrainTimesteps) {
        throw new RangeError(`pndm scheduler: num_inference_steps must be an integer in [1, ${numTrainTimesteps}], got ${n}`);
      }
      if (!skipPrkSteps && n < PNDM_ORDER) {
        throw new RangeError(`pndm scheduler: num_inference_steps must be >= ${PNDM_ORDER} unless skip_prk_steps, got ${n}`);
      }
      numInferenceSteps = n;
      const ascending = discreteTimesteps(spacing, numTrainTimesteps, n, stepsOffset).reverse();
      if (skipPrkSteps) {
        // [..., t_{n-2}, t_{n-2}, t_{n-1}] reversed: the second timestep is run twice.
        prkTimesteps = [];
        timesteps = [...ascending.slice(0, -1), ...ascending.slice(-2, -1), ...ascending.slice(-1)].reverse();
      } else {
        // The last PNDM_ORDER timesteps and the midpoints between them, each inner one visited twice:
        // np.repeat / np.tile in diffusers, spelled out.
        const half = Math.floor(Math.floor(numTrainTimesteps / n) / 2);
        const withMidpoints = ascending.slice(-PNDM_ORDER).flatMap((t) => [t, t + half]);
        prkTimesteps = withMidpoints
          .slice(0, -1)
          .flatMap((t) => [t, t])
          .slice(1, -1)
          .reverse();
        timesteps = [...prkTimesteps, ...ascending.slice(0, -3).reverse()];
      }
      counter = 0;
      ets = [];
      curModelOutput = undefined;
      curSample = undefined;
    },

    scaleModelInput: (sample) => sample,

    step(modelOutput, t, sample) {
      if (numInferenceSteps === 0) throw new Error('pndm scheduler: call setTimesteps before step');
      return counter < prkTimesteps.length && !skipPrkSteps
        ? stepPrk(modelOutput, t, sample)
        : stepPlms(modelOutput, t, sample);
    },
  };
}

/** c * x, with the Python float c taken to float32 first as torch does for a scalar operand. */
function scaled(c: number, x: Float32Array): Float32Array {
  const c32 = f(c);
  return combine(x.length, (i) => f(c32 * x[i]!));
}

/** acc + c * x in float32. */
function addScaled(acc: Float32Array, c: number, x: Float32Array): Float32Array {
  const c32 = f(c);
  return combine(x.length, (i) => f(acc[i]! + f(c32 * x[i]!)));
}
