// The interface every scheduler implements (after diffusers' SchedulerMixin): the pipeline only
// ever talks to this, never to a particular scheduler.
import type { Generator } from '../rng.ts';

export const SCHEDULER_NAMES = ['ddim', 'pndm', 'euler', 'euler_a', 'dpmpp_2m', 'lcm'] as const;
export type SchedulerName = (typeof SCHEDULER_NAMES)[number];

/** The snake_case keys of diffusers' scheduler_config.json; missing keys take each scheduler's default. */
export type SchedulerConfig = Record<string, unknown>;

export interface Scheduler {
  /** Prepares `numInferenceSteps` steps; fills `timesteps`. */
  setTimesteps(numInferenceSteps: number): void;
  /** The timesteps of the current schedule, in the order they are run. */
  readonly timesteps: number[];
  /** Standard deviation of the initial noise (multiply the generator's N(0,1) latents by it). */
  readonly initNoiseSigma: number;
  /** Scales the denoising model input for timestep `t` (identity for most schedulers). */
  scaleModelInput(sample: Float32Array, t: number): Float32Array;
  /** One denoising step: returns the previous (less noisy) sample. Stochastic schedulers draw from `generator`. */
  step(modelOutput: Float32Array, t: number, sample: Float32Array, generator?: Generator): Float32Array;
  /**
   * Where this scheduler's step at `t` is prev = sampleCoeff·sample + noiseCoeff·noise on the model
   * input sample / sampleDivisor (deterministic, element-wise, nothing kept from earlier steps), those
   * three numbers, so that the step can run as ONNX ops beside the UNet (denoise-graph.ts). It stands
   * for scaleModelInput and step together and advances the scheduler as step does. Undefined where
   * the step needs more (noise, history, clipping): the caller then uses scaleModelInput and step.
   */
  affineStep?(t: number): AffineStep | undefined;
}

/** One step as prev = sampleCoeff·x + noiseCoeff·noise, the model seeing x / sampleDivisor; float32 values. */
export interface AffineStep {
  sampleDivisor: number;
  sampleCoeff: number;
  noiseCoeff: number;
}
