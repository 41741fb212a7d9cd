// The k-diffusion style noise levels (sigma = sqrt((1 - ᾱ) / ᾱ)) shared by the Euler, Euler ancestral and
// DPM-Solver schedulers, computed as diffusers computes them: numpy's float64 where diffusers uses numpy
// (np.linspace, np.arange, np.interp, np.round), float32 where it uses torch tensors or float32 arrays.
import { kernels } from '../kernels/index.ts';
import { discreteTimesteps, roundHalfEven, type TimestepSpacing } from './betas.ts';

export { roundHalfEven };
import type { Scheduler, SchedulerConfig } from './types.ts';

/** A scheduler that steps along a sigma schedule; `sigmas` has one entry per timestep plus the final one. */
export interface SigmaScheduler extends Scheduler {
  readonly sigmas: Float32Array;
}

/** Reads an optional number key (diffusers' `Optional[float] = None`). */
export function configOptionalNumber(config: SchedulerConfig, key: string): number | null {
  const v = config[key];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new Error(`scheduler config: ${key} must be a number or null, got ${JSON.stringify(v)}`);
  }
  return v;
}

/** Checks a number of inference steps before any schedule is built from it. */
export function checkStepCount(numInferenceSteps: number, numTrainTimesteps: number): void {
  if (!Number.isInteger(numInferenceSteps) || numInferenceSteps < 1 || numInferenceSteps > numTrainTimesteps) {
    throw new RangeError(
      `num_inference_steps must be an integer from 1 to ${numTrainTimesteps}, got ${numInferenceSteps}`,
    );
  }
}

/** ((1 - ᾱ) / ᾱ) ** 0.5 per training timestep, ascending in t, as the float32 torch expression in diffusers. */
export function trainSigmas(alphasCumprod: Float32Array): Float32Array {
  return alphasCumprod.map((a) => Math.fround(Math.sqrt(Math.fround(Math.fround(1 - a) / a))));
}

/** np.linspace(start, stop, num) in float64: start + i * step, with the end point set exactly. */
export function npLinspace(start: number, stop: number, num: number): Float64Array {
  if (num === 1) return Float64Array.of(start);
  const out = new Float64Array(num);
  const step = (stop - start) / (num - 1);
  for (let i = 0; i < num; i++) out[i] = i * step + start;
  out[num - 1] = stop;
  return out;
}

/**
 * np.arange(start, stop, step) in float64. numpy fills from the first two values, so the increment it
 * repeats is (start + step) - start, which can differ from `step` in the last bit, and that bit can
 * decide which way np.round takes a trailing-spacing timestep.
 */
export function npArange(start: number, stop: number, step: number): Float64Array {
  const length = Math.max(0, Math.ceil((stop - start) / step));
  const out = new Float64Array(length);
  const second = start + step;
  const delta = second - start;
  for (let i = 0; i < length; i++) out[i] = i === 0 ? start : i === 1 ? second : start + i * delta;
  return out;
}

/** np.interp(x, np.arange(len(fp)), fp) for one x, in float64 as numpy computes it. */
export function npInterp(x: number, fp: ArrayLike<number>): number {
  const last = fp.length - 1;
  if (x <= 0) return fp[0]!;
  if (x >= last) return fp[last]!;
  const j = Math.floor(x);
  if (j === x) return fp[j]!;
  const slope = fp[j + 1]! - fp[j]!;
  return slope * (x - j) + fp[j]!;
}

/** The Karras et al. (2022) schedule (rho 7) from sigmaMax down to sigmaMin, in float64 as diffusers computes it. */
export function karrasSigmas(sigmaMin: number, sigmaMax: number, numInferenceSteps: number): Float64Array {
  const rho = 7;
  const ramp = npLinspace(0, 1, numInferenceSteps);
  const minInvRho = sigmaMin ** (1 / rho);
  const maxInvRho = sigmaMax ** (1 / rho);
  return ramp.map((r) => (maxInvRho + r * (minInvRho - maxInvRho)) ** rho);
}

/**
 * The fractional training timestep of `sigma`, interpolating linearly in log sigma (diffusers' _sigma_to_t).
 * `logSigmas` is np.log of the float32 training sigmas, so it stays float32 (and so does low - high).
 */
export function sigmaToT(sigma: number, logSigmas: Float32Array): number {
  const logSigma = Math.log(Math.max(sigma, 1e-10));
  // cumsum(dists >= 0).argmax(): the first index where the running count of log_sigmas <= log_sigma peaks.
  let count = 0;
  let best = -1;
  let lowIdx = 0;
  for (let i = 0; i < logSigmas.length; i++) {
    if (logSigma - logSigmas[i]! >= 0) count++;
    if (count > best) {
      best = count;
      lowIdx = i;
    }
  }
  lowIdx = Math.min(lowIdx, logSigmas.length - 2);
  const low = logSigmas[lowIdx]!;
  const high = logSigmas[lowIdx + 1]!;
  const w = Math.min(Math.max((low - logSigma) / Math.fround(low - high), 0), 1);
  return (1 - w) * lowIdx + w * (lowIdx + 1);
}

/** np.log of the float32 training sigmas (a float32 array, as numpy keeps it). */
export function logSigmas(sigmas: Float32Array): Float32Array {
  return sigmas.map((s) => Math.fround(Math.log(s)));
}

/**
 * The position of the current step in the schedule. Like diffusers' step_index it is found from the timestep
 * on the first call after a reset and counted from there, so repeated timesteps stay unambiguous: when the
 * first timestep occurs twice the second match is taken, so that a loop starting mid-schedule (img2img)
 * does not skip a sigma.
 */
export class StepIndex {
  private index: number | null = null;

  /** Forgets the position (a new schedule). */
  reset(): void {
    this.index = null;
  }

  /** The position for timestep `t`; `ifMissing` is what diffusers does for a timestep not in the schedule. */
  at(timesteps: readonly number[], t: number, ifMissing: 'throw' | 'last'): number {
    if (this.index !== null) return this.index;
    const first = timesteps.indexOf(t);
    if (first === -1) {
      if (ifMissing === 'throw') throw new Error(`timestep ${t} is not in the scheduler's timesteps`);
      this.index = timesteps.length - 1;
    } else {
      const second = timesteps.indexOf(t, first + 1);
      this.index = second === -1 ? first : second;
    }
    return this.index;
  }

  /** Moves to the next step once a step is done. */
  advance(): void {
    if (this.index !== null) this.index++;
  }
}

/** Euler-family initial noise: the largest sigma, plus x_T's unit variance for "leading" spacing. */
export function eulerInitNoiseSigma(sigmas: Float32Array, spacing: TimestepSpacing): number {
  const max = sigmas.reduce((m, s) => Math.max(m, s), -Infinity);
  return spacing === 'leading' ? Math.fround(Math.sqrt(Math.fround(Math.fround(max * max) + 1))) : max;
}

/** Euler-family model input: the sample divided by sqrt(sigma² + 1), in float32. */
export function scaleBySigma(sample: Float32Array, sigma: number): Float32Array {
  const scale = Math.fround(Math.sqrt(Math.fround(Math.fround(sigma * sigma) + 1)));
  // x / scale into a fresh array, four lanes at a time where WebAssembly SIMD runs (kernels/).
  return kernels.divide(sample, scale);
}

/** The state diffusers' Euler-family schedulers start in before set_timesteps: every training timestep. */
export function trainingSchedule(train: Float32Array): { timesteps: number[]; sigmas: Float32Array } {
  const n = train.length;
  return {
    timesteps: Array.from({ length: n }, (_, i) => n - 1 - i),
    sigmas: Float32Array.from([...train].reverse().concat([0])),
  };
}

/**
 * The timesteps of the Euler family for a `timestep_spacing`: "leading" and "trailing" are DDIM's integer
 * timesteps (as float32), "linspace" keeps np.linspace's fractional values, cast to float32.
 */
export function spacedTimesteps(
  spacing: TimestepSpacing,
  numTrainTimesteps: number,
  numInferenceSteps: number,
  stepsOffset: number,
): Float32Array {
  if (spacing !== 'linspace') {
    return Float32Array.from(discreteTimesteps(spacing, numTrainTimesteps, numInferenceSteps, stepsOffset));
  }
  return Float32Array.from(npLinspace(0, numTrainTimesteps - 1, numInferenceSteps)).reverse();
}
