// What every scheduler test starts from, as diffusers' SchedulerCommonTest provides it: the
// deterministic dummy sample and noise, the dummy model, and a generator whose draws are known.
// The expected numbers in the tests are diffusers' own, so these must build the same tensors.
import type { Generator } from '../../../src/runner/pipeline/rng.ts';

const f = Math.fround;
const [BATCH, CHANNELS, HEIGHT, WIDTH] = [4, 3, 8, 8];

/** Elements of the dummy sample: batch 4, 3 channels, 8×8. */
export const SAMPLE_SIZE = BATCH * CHANNELS * HEIGHT * WIDTH;

/**
 * SchedulerCommonTest.dummy_sample_deter (or dummy_noise_deter with `flip`): torch.arange(768), flipped
 * for the noise, reshaped to (C, H, W, B), divided by 768 in float32, permuted to (B, C, H, W).
 */
export function dummySample(flip = false): Float32Array {
  const out = new Float32Array(SAMPLE_SIZE);
  for (let b = 0; b < BATCH; b++)
    for (let c = 0; c < CHANNELS; c++)
      for (let h = 0; h < HEIGHT; h++)
        for (let w = 0; w < WIDTH; w++) {
          const position = ((c * HEIGHT + h) * WIDTH + w) * BATCH + b;
          const value = flip ? SAMPLE_SIZE - 1 - position : position;
          out[((b * CHANNELS + c) * HEIGHT + h) * WIDTH + w] = f(value / SAMPLE_SIZE);
        }
  return out;
}

/**
 * SchedulerCommonTest.dummy_model: sample * t / (t + 1), with t cast to the sample's float32 (the
 * sigma schedulers' timesteps are fractional; the discrete ones' integers are float32 values already).
 */
export function dummyModel(sample: Float32Array, t: number): Float32Array {
  const tf = f(t);
  const denominator = f(tf + 1);
  return sample.map((x) => f(f(x * tf) / denominator));
}

/** A stand-in for the torch-compatible generator: every draw is `value`; records the counts drawn. */
export function constantGenerator(value: number): Generator & { draws: number[] } {
  const draws: number[] = [];
  return {
    draws,
    randn(count) {
      draws.push(count);
      return new Float32Array(count).fill(value);
    },
  };
}
