// The element-wise kernels as plain JS loops: the reference the SIMD module must match bit for bit,
// and what runs where WebAssembly SIMD does not. Each rounds to float32 after every operation
// (Math.fround), as torch computes on float32 tensors.
import { plmsNoise, plmsRepeatNoise } from '../schedulers/plms.ts';
import type { Kernels, PndmCoefficients } from './types.ts';

const f = Math.fround;

/**
 * The reference loops, and what runs where WebAssembly SIMD does not. Module-level functions, so V8
 * optimizes each loop once, not with every txt2img call or scheduler.
 */
export const jsKernels: Kernels = {
  guidance(prediction, g) {
    // An integer half (>>> 1, not / 2) keeps `k + half` a small-integer index; with a double V8's
    // element access is several times slower.
    const half = prediction.length >>> 1;
    for (let k = 0; k < half; k++) {
      const uncond = prediction[k]!;
      prediction[k] = uncond + g * (prediction[k + half]! - uncond);
    }
    return prediction.subarray(0, half);
  },
  ddimEpsilon(sample, modelOutput, { sqrtBeta, sqrtAlpha, sqrtAlphaPrev, directionCoeff }) {
    const n = sample.length;
    const prev = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const x = sample[i]!;
      const m = modelOutput[i]!;
      prev[i] = f(f(sqrtAlphaPrev * f(f(x - f(sqrtBeta * m)) / sqrtAlpha)) + f(directionCoeff * m));
    }
    return prev;
  },
  divide(sample, divisor) {
    return sample.map((x) => x / divisor);
  },
  eulerEpsilon(x, modelOutput, sigmaHat, dt) {
    const prev = new Float32Array(x.length);
    for (let k = 0; k < x.length; k++) {
      const xk = x[k]!;
      const m = modelOutput[k]!;
      const pred = f(xk - f(sigmaHat * m));
      const derivative = f(f(xk - pred) / sigmaHat);
      prev[k] = xk + f(derivative * dt);
    }
    return prev;
  },
  eulerAncestralEpsilon(sample, modelOutput, noise, { sigma, dt, sigmaUp }) {
    const prev = new Float32Array(sample.length);
    for (let k = 0; k < sample.length; k++) {
      const x = sample[k]!;
      const m = modelOutput[k]!;
      const pred = f(x - f(sigma * m));
      const derivative = f(f(x - pred) / sigma);
      prev[k] = f(x + f(derivative * dt)) + f(noise[k]! * sigmaUp);
    }
    return prev;
  },
  dpmDataPrediction(sample, modelOutput, s, alpha) {
    const out = new Float32Array(sample.length);
    for (let k = 0; k < out.length; k++) {
      const x = sample[k]!;
      const m = modelOutput[k]!;
      out[k] = f(x - f(s * m)) / alpha;
    }
    return out;
  },
  dpmFirstOrder(sample, m0, a, b) {
    return sample.map((x, k) => f(a * x) - f(b * m0[k]!));
  },
  dpmSecondOrder(sample, m0, m1, { a, b, c, invR0 }) {
    return sample.map((x, k) => {
      const d1 = f(invR0 * f(m0[k]! - m1[k]!));
      return f(f(a * x) - f(b * m0[k]!)) - f(c * d1);
    });
  },
  plms(sample, ets, c) {
    return pndmPrevSample(sample, plmsNoise(ets), c);
  },
  plmsRepeat(sample, modelOutput, e1, c) {
    return pndmPrevSample(sample, plmsRepeatNoise(modelOutput, e1), c);
  },
  lcmEpsilon(sample, modelOutput, noise, { sqrtBeta, sqrtAlpha, cOut, cSkip, sqrtAlphaPrev, sqrtBetaPrev }) {
    const out = new Float32Array(sample.length);
    for (let i = 0; i < sample.length; i++) {
      const x = sample[i]!;
      const m = modelOutput[i]!;
      const x0 = f(f(x - f(sqrtBeta * m)) / sqrtAlpha);
      const denoised = f(f(cOut * x0) + f(cSkip * x));
      out[i] = noise ? f(f(sqrtAlphaPrev * denoised) + f(sqrtBetaPrev * noise[i]!)) : denoised;
    }
    return out;
  },
};

/** PNDM's formula (9) for epsilon prediction. */
function pndmPrevSample(sample: Float32Array, eps: Float32Array, { sampleCoeff, alphaDiff, denomCoeff }: PndmCoefficients): Float32Array {
  const out = new Float32Array(sample.length);
  for (let i = 0; i < sample.length; i++) {
    const x = sample[i]!;
    const e = eps[i]!;
    out[i] = f(f(sampleCoeff * x) - f(f(alphaDiff * e) / denomCoeff));
  }
  return out;
}
