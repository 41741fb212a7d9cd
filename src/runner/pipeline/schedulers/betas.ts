// Noise schedules shared by the schedulers, as diffusers computes them (float32 results, computed
// in float64 where diffusers uses torch.float64 and float32 where it uses torch.float32).
import type { SchedulerConfig } from './types.ts';

export type BetaSchedule = 'linear' | 'scaled_linear' | 'squaredcos_cap_v2';

/** Reads a config key with a default, checking its type; unknown keys are ignored as diffusers does. */
export function configValue<T extends string | number | boolean | null>(
  config: SchedulerConfig,
  key: string,
  fallback: T,
): T {
  const v = config[key];
  if (v === undefined) return fallback;
  if (fallback !== null && typeof v !== typeof fallback) {
    throw new Error(`scheduler config: ${key} must be a ${typeof fallback}, got ${JSON.stringify(v)}`);
  }
  return v as T;
}

/**
 * torch.linspace(start, end, n) in float32 as the CPU kernel computes it: the step in float32, each
 * value one rounding of start + step*i (end - step*(n-1-i) for the upper half).
 */
export function linspace32(start: number, end: number, n: number): Float32Array {
  const out = new Float32Array(n);
  const s = Math.fround(start);
  const e = Math.fround(end);
  if (n === 1) {
    out[0] = s;
    return out;
  }
  const step = Math.fround(Math.fround(e - s) / (n - 1));
  const half = Math.floor(n / 2);
  for (let i = 0; i < n; i++) out[i] = i < half ? s + step * i : e - step * (n - 1 - i);
  return out;
}

/** Betas of `num_train_timesteps` steps for the configured schedule (float32, as diffusers keeps them). */
export function betasFor(config: SchedulerConfig): Float32Array {
  const n = configValue(config, 'num_train_timesteps', 1000);
  const start = configValue(config, 'beta_start', 0.0001);
  const end = configValue(config, 'beta_end', 0.02);
  const schedule = configValue(config, 'beta_schedule', 'linear') as BetaSchedule;
  const trained = config.trained_betas;
  if (Array.isArray(trained)) return Float32Array.from(trained as number[]);
  switch (schedule) {
    case 'linear':
      return linspace32(start, end, n);
    case 'scaled_linear': {
      const roots = linspace32(Math.fround(Math.sqrt(start)), Math.fround(Math.sqrt(end)), n);
      return roots.map((r) => Math.fround(r * r));
    }
    case 'squaredcos_cap_v2': {
      // betas_for_alpha_bar with the cosine alpha_bar, max_beta 0.999 (computed in float64 by diffusers).
      const alphaBar = (t: number) => Math.cos(((t + 0.008) / 1.008) * Math.PI / 2) ** 2;
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = Math.min(1 - alphaBar((i + 1) / n) / alphaBar(i / n), 0.999);
      return out;
    }
    default:
      throw new Error(`scheduler config: beta_schedule ${JSON.stringify(schedule)} is not supported`);
  }
}

/** alphas_cumprod = cumprod(1 - betas): torch's CPU cumprod on float32 accumulates in double, then stores float32. */
export function alphasCumprod(betas: Float32Array): Float32Array {
  const out = new Float32Array(betas.length);
  let acc = 1;
  for (let i = 0; i < betas.length; i++) {
    acc *= Math.fround(1 - betas[i]!);
    out[i] = acc;
  }
  return out;
}

/** Fails naming the key when a feature this port leaves out is switched on, instead of silently ignoring it. */
export function rejectEnabled(config: SchedulerConfig, keys: readonly string[], scheduler: string): void {
  for (const key of keys) {
    const v = config[key];
    if (v !== undefined && v !== null && v !== false) {
      throw new Error(`scheduler config: ${key}=${JSON.stringify(v)} is not supported by ${scheduler}`);
    }
  }
}

/**
 * ᾱ over the training timesteps, read the way DDIM, PNDM and LCM step with it: `at(t)` for a
 * timestep of the schedule (failing on one outside the training range rather than reading
 * undefined), `prev(t)` for the step's target, which is the final ᾱ once the target falls below 0:
 * 1 with set_alpha_to_one (a clean last sample), else alphas_cumprod[0], as Stable Diffusion sets it.
 */
export interface AlphaSchedule {
  at(t: number): number;
  prev(prevT: number): number;
}

export function alphaSchedule(alphas: Float32Array, setAlphaToOne: boolean, scheduler: string): AlphaSchedule {
  const finalAlphaCumprod = setAlphaToOne ? 1 : alphas[0]!;
  const at = (t: number): number => {
    const a = alphas[t];
    if (!Number.isInteger(t) || a === undefined) {
      throw new Error(`${scheduler} scheduler: timestep ${t} is not an integer in [0, ${alphas.length})`);
    }
    return a;
  };
  return { at, prev: (prevT) => (prevT >= 0 ? at(prevT) : finalAlphaCumprod) };
}

/** Reads a string config key that must be one of `choices`. */
export function configChoice<T extends string>(
  config: SchedulerConfig,
  key: string,
  choices: readonly T[],
  fallback: T,
): T {
  const v = configValue<string>(config, key, fallback);
  if (!(choices as readonly string[]).includes(v)) {
    throw new Error(`scheduler config: ${key} must be one of ${choices.join(', ')}, got ${JSON.stringify(v)}`);
  }
  return v as T;
}

/** Reads an integer config key that must be at least `min`. */
export function configInteger(config: SchedulerConfig, key: string, fallback: number, min: number): number {
  const v = configValue(config, key, fallback);
  if (!Number.isInteger(v) || v < min) {
    throw new Error(`scheduler config: ${key} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
  }
  return v;
}

export const TIMESTEP_SPACINGS = ['leading', 'trailing', 'linspace'] as const;
export type TimestepSpacing = (typeof TIMESTEP_SPACINGS)[number];

/**
 * The integer timesteps, descending, that DDIM and PNDM derive from `timestep_spacing` (Table 2 of
 * arXiv:2305.08891), computed as their numpy code does: np.round rounds halves to even, and trailing's
 * fractional np.arange is rebuilt element by element so its rounding (and length) match.
 */
export function discreteTimesteps(
  spacing: TimestepSpacing,
  numTrainTimesteps: number,
  numInferenceSteps: number,
  stepsOffset: number,
): number[] {
  const n = numInferenceSteps;
  switch (spacing) {
    case 'leading': {
      const ratio = Math.floor(numTrainTimesteps / n);
      return Array.from({ length: n }, (_, i) => (n - 1 - i) * ratio + stepsOffset);
    }
    case 'trailing': {
      // np.arange(T, 0, -T/n): length ceil(-T / step), element i = start + i * ((start + step) - start).
      const step = -numTrainTimesteps / n;
      const length = Math.ceil(-numTrainTimesteps / step);
      const delta = numTrainTimesteps + step - numTrainTimesteps;
      return Array.from({ length }, (_, i) => roundHalfEven(numTrainTimesteps + i * delta) - 1);
    }
    case 'linspace': {
      // np.linspace(0, T - 1, n): i * step, with the last element pinned to the end point.
      const end = numTrainTimesteps - 1;
      const step = n > 1 ? end / (n - 1) : 0;
      return Array.from({ length: n }, (_, i) => roundHalfEven(i === n - 1 && n > 1 ? end : i * step)).reverse();
    }
  }
}

/** np.round: halves go to the even neighbour. */
export function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const frac = x - floor;
  if (frac !== 0.5) return Math.round(x);
  return floor % 2 === 0 ? floor : floor + 1;
}
