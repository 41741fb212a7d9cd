// What the element-wise kernels of a denoising step compute, and the named coefficients they take:
// the JS reference loops (reference.ts) and the WebAssembly SIMD module (wasm.ts) both implement it.

/** Element-wise kernels of the denoising loop; every implementation returns the same values. */
export interface Kernels {
  /**
   * Classifier-free guidance: uncond + g·(cond − uncond) over the [uncond | cond] halves of
   * `prediction`, written over the uncond half, which is returned. In place is safe: every step's
   * prediction is a fresh array from onnxruntime, so a multistep scheduler (PNDM, DPM++) that keeps
   * earlier model outputs keeps its own.
   */
  guidance(prediction: Float32Array, g: number): Float32Array;
  /**
   * DDIM's step for epsilon prediction without clipping or noise, into a fresh array:
   * sqrtAlphaPrev·((x − sqrtBeta·m) / sqrtAlpha) + directionCoeff·m, rounded to float32 after every
   * operation. The coefficients must already be float32 values.
   */
  ddimEpsilon(sample: Float32Array, modelOutput: Float32Array, c: DdimCoefficients): Float32Array;
  /** x / divisor into a fresh array (the Euler family's scaleModelInput); `divisor` a float32 value. */
  divide(sample: Float32Array, divisor: number): Float32Array;
  /**
   * Euler's step for epsilon prediction without churn, into a fresh array:
   * x + ((x − (x − sigmaHat·m)) / sigmaHat)·dt in float32. The coefficients must be float32 values,
   * as must all the coefficients below.
   */
  eulerEpsilon(sample: Float32Array, modelOutput: Float32Array, sigmaHat: number, dt: number): Float32Array;
  /** Euler ancestral's step for epsilon prediction: Euler's step down to sigmaDown, plus noise·sigmaUp. */
  eulerAncestralEpsilon(
    sample: Float32Array,
    modelOutput: Float32Array,
    noise: Float32Array,
    c: EulerAncestralCoefficients,
  ): Float32Array;
  /** DPM-Solver++'s data prediction from epsilon, into a fresh array: (x − sigma·m) / alpha. */
  dpmDataPrediction(sample: Float32Array, modelOutput: Float32Array, sigma: number, alpha: number): Float32Array;
  /** DPM-Solver's first-order update, into a fresh array: a·x − b·m0. */
  dpmFirstOrder(sample: Float32Array, m0: Float32Array, a: number, b: number): Float32Array;
  /** DPM-Solver's second-order update, into a fresh array: (a·x − b·m0) − c·(invR0·(m0 − m1)). */
  dpmSecondOrder(sample: Float32Array, m0: Float32Array, m1: Float32Array, c: DpmSecondOrderCoefficients): Float32Array;
  /**
   * PNDM's linear multistep step for epsilon prediction, into a fresh array: the noise estimate from
   * the model outputs kept, newest first (`ets`, 1 to 4 of them, the count picking the formula),
   * then formula (9): sampleCoeff·x − (alphaDiff·eps) / denomCoeff.
   */
  plms(sample: Float32Array, ets: readonly Float32Array[], c: PndmCoefficients): Float32Array;
  /** PNDM's repeated warm-up step: as `plms`, with eps the average (m + previous) / 2. */
  plmsRepeat(sample: Float32Array, modelOutput: Float32Array, previous: Float32Array, c: PndmCoefficients): Float32Array;
  /**
   * LCM's step for epsilon prediction without clipping, into a fresh array: the consistency
   * boundary condition cOut·x0 + cSkip·x with x0 = (x − sqrtBeta·m) / sqrtAlpha, re-noised to
   * sqrtAlphaPrev·denoised + sqrtBetaPrev·noise unless `noise` is undefined (the last step).
   */
  lcmEpsilon(sample: Float32Array, modelOutput: Float32Array, noise: Float32Array | undefined, c: LcmCoefficients): Float32Array;
}

// The coefficients of one step, by name: every value must already be a float32 value (Math.fround),
// since the kernels compute in float32 and a float64 coefficient would round differently.

/** DDIM, formula (12): sqrtAlphaPrev·x0 + directionCoeff·eps with x0 = (x − sqrtBeta·m) / sqrtAlpha. */
export interface DdimCoefficients {
  sqrtBeta: number;
  sqrtAlpha: number;
  sqrtAlphaPrev: number;
  directionCoeff: number;
}

/** Euler ancestral: the step from `sigma` by `dt` down to sigmaDown, plus noise·sigmaUp. */
export interface EulerAncestralCoefficients {
  sigma: number;
  dt: number;
  sigmaUp: number;
}

/** DPM-Solver's second-order update: (a·x − b·m0) − c·(invR0·(m0 − m1)). */
export interface DpmSecondOrderCoefficients {
  a: number;
  b: number;
  c: number;
  invR0: number;
}

/** PNDM's formula (9): sampleCoeff·x − (alphaDiff·eps) / denomCoeff. */
export interface PndmCoefficients {
  sampleCoeff: number;
  alphaDiff: number;
  denomCoeff: number;
}

/** LCM: the boundary condition (cOut, cSkip) on x0 = (x − sqrtBeta·m) / sqrtAlpha, re-noised by the prev pair. */
export interface LcmCoefficients {
  sqrtBeta: number;
  sqrtAlpha: number;
  cOut: number;
  cSkip: number;
  sqrtAlphaPrev: number;
  sqrtBetaPrev: number;
}
