// PNDM's linear multistep noise estimates (diffusers' step_plms), element by element in float32:
// the scheduler's own math, which the reference kernels also build on.
const f = Math.fround;

/**
 * PNDM's linear multistep noise estimate from the newest model outputs, newest first (1 to 4 of
 * them: the Adams–Bashforth orders of diffusers' step_plms).
 */
export function plmsNoise(ets: readonly Float32Array[]): Float32Array {
  const n = ets[0]!.length;
  if (ets.length === 1) return ets[0]!;
  if (ets.length === 2) {
    const [e1, e2] = ets as [Float32Array, Float32Array];
    return combine(n, (i) => f(f(f(3 * e1[i]!) - e2[i]!) / 2));
  }
  if (ets.length === 3) {
    const [e1, e2, e3] = ets as [Float32Array, Float32Array, Float32Array];
    return combine(n, (i) => f(f(f(f(23 * e1[i]!) - f(16 * e2[i]!)) + f(5 * e3[i]!)) / 12));
  }
  const [e1, e2, e3, e4] = ets as [Float32Array, Float32Array, Float32Array, Float32Array];
  const oneOver24 = f(1 / 24);
  return combine(n, (i) => f(oneOver24 * f(f(f(f(55 * e1[i]!) - f(59 * e2[i]!)) + f(37 * e3[i]!)) - f(9 * e4[i]!))));
}

/** PNDM's repeated warm-up step (no Runge–Kutta steps): the average of both model outputs. */
export function plmsRepeatNoise(modelOutput: Float32Array, previous: Float32Array): Float32Array {
  return combine(modelOutput.length, (i) => f(f(modelOutput[i]! + previous[i]!) / 2));
}

/** A fresh array whose element i is element(i). */
export function combine(length: number, element: (i: number) => number): Float32Array {
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) out[i] = element(i);
  return out;
}
