// WebAssembly SIMD kernels for the element-wise loops of every denoising step: classifier-free
// guidance and the schedulers' steps in Stable Diffusion's configuration (epsilon prediction, no
// clipping). As plain JS they are most of the work a step does outside onnxruntime; SIMD lanes (four
// float32 or two float64 per instruction) cut it to a fraction.
//
// They must give the same values as the JS loops, bit for bit (same request, same seed, same
// bytes): f32x4 arithmetic rounds every operation to float32, which is what the Math.fround chains
// of the schedulers' loops compute (a single +, −, × or ÷ of two float32 values in float64, rounded
// once on store, is the float32 operation too), and guidance, which JS computes in float64 and
// rounds once on store, runs in f64x2 lanes and is demoted once. No fused multiply-add is involved
// on either side.
//
// The module's bytes are written here rather than shipped as a binary: it is small, and a readable
// emitter can be reviewed. Where WebAssembly SIMD is unavailable, the JS loops run instead.

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
  ddimEpsilon(
    sample: Float32Array,
    modelOutput: Float32Array,
    sqrtBeta: number,
    sqrtAlpha: number,
    sqrtAlphaPrev: number,
    directionCoeff: number,
  ): Float32Array;
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
    sigma: number,
    dt: number,
    sigmaUp: number,
  ): Float32Array;
  /** DPM-Solver++'s data prediction from epsilon, into a fresh array: (x − sigma·m) / alpha. */
  dpmDataPrediction(sample: Float32Array, modelOutput: Float32Array, sigma: number, alpha: number): Float32Array;
  /** DPM-Solver's first-order update, into a fresh array: a·x − b·m0. */
  dpmFirstOrder(sample: Float32Array, m0: Float32Array, a: number, b: number): Float32Array;
  /** DPM-Solver's second-order update, into a fresh array: (a·x − b·m0) − c·(invR0·(m0 − m1)). */
  dpmSecondOrder(
    sample: Float32Array,
    m0: Float32Array,
    m1: Float32Array,
    a: number,
    b: number,
    c: number,
    invR0: number,
  ): Float32Array;
  /**
   * PNDM's linear multistep step for epsilon prediction, into a fresh array: the noise estimate from
   * the model outputs kept, newest first (`ets`, 1 to 4 of them, the count picking the formula),
   * then formula (9): sampleCoeff·x − (alphaDiff·eps) / denomCoeff.
   */
  plms(sample: Float32Array, ets: readonly Float32Array[], sampleCoeff: number, alphaDiff: number, denomCoeff: number): Float32Array;
  /** PNDM's repeated warm-up step: as `plms`, with eps the average (m + previous) / 2. */
  plmsRepeat(
    sample: Float32Array,
    modelOutput: Float32Array,
    previous: Float32Array,
    sampleCoeff: number,
    alphaDiff: number,
    denomCoeff: number,
  ): Float32Array;
  /**
   * LCM's step for epsilon prediction without clipping, into a fresh array: the consistency
   * boundary condition cOut·x0 + cSkip·x with x0 = (x − sqrtBeta·m) / sqrtAlpha, re-noised to
   * sqrtAlphaPrev·denoised + sqrtBetaPrev·noise unless `noise` is undefined (the last step).
   */
  lcmEpsilon(
    sample: Float32Array,
    modelOutput: Float32Array,
    noise: Float32Array | undefined,
    sqrtBeta: number,
    sqrtAlpha: number,
    cOut: number,
    cSkip: number,
    sqrtAlphaPrev: number,
    sqrtBetaPrev: number,
  ): Float32Array;
}

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
  ddimEpsilon(sample, modelOutput, sqrtBeta, sqrtAlpha, sqrtAlphaPrev, directionCoeff) {
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
  eulerAncestralEpsilon(sample, modelOutput, noise, sigma, dt, sigmaUp) {
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
  dpmSecondOrder(sample, m0, m1, a, b, c, invR0) {
    return sample.map((x, k) => {
      const d1 = f(invR0 * f(m0[k]! - m1[k]!));
      return f(f(a * x) - f(b * m0[k]!)) - f(c * d1);
    });
  },
  plms(sample, ets, sampleCoeff, alphaDiff, denomCoeff) {
    return pndmPrevSample(sample, plmsNoise(ets), sampleCoeff, alphaDiff, denomCoeff);
  },
  plmsRepeat(sample, modelOutput, e1, sampleCoeff, alphaDiff, denomCoeff) {
    return pndmPrevSample(sample, plmsRepeatNoise(modelOutput, e1), sampleCoeff, alphaDiff, denomCoeff);
  },
  lcmEpsilon(sample, modelOutput, noise, sqrtBeta, sqrtAlpha, cOut, cSkip, sqrtAlphaPrev, sqrtBetaPrev) {
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

/** PNDM's formula (9) for epsilon prediction. */
function pndmPrevSample(sample: Float32Array, eps: Float32Array, sampleCoeff: number, alphaDiff: number, denomCoeff: number): Float32Array {
  const out = new Float32Array(sample.length);
  for (let i = 0; i < sample.length; i++) {
    const x = sample[i]!;
    const e = eps[i]!;
    out[i] = f(f(sampleCoeff * x) - f(f(alphaDiff * e) / denomCoeff));
  }
  return out;
}

// --- A minimal WebAssembly binary emitter: only what the kernels need. ---

/** Unsigned LEB128, the encoding of every count, index and SIMD opcode in the binary format. */
function uleb(value: number): number[] {
  const bytes: number[] = [];
  do {
    let byte = value & 0x7f;
    value >>>= 7;
    if (value !== 0) byte |= 0x80;
    bytes.push(byte);
  } while (value !== 0);
  return bytes;
}

const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];
const name = (text: string): number[] => vec([...new TextEncoder().encode(text)].map((b) => [b]));

const I32 = 0x7f;
const F32 = 0x7d;
const F64 = 0x7c;
const V128 = 0x7b;

const get = (local: number) => [0x20, ...uleb(local)];
const set = (local: number) => [0x21, ...uleb(local)];
const I32_ADD = [0x6a];
const I32_GE_U = [0x4f];
const i32Const = (v: number) => [0x41, ...uleb(v)]; // signed LEB128; equal to unsigned below 64
const simd = (op: number) => [0xfd, ...uleb(op)];
// memarg: log2 of the alignment hint, then a constant offset added to the address.
const v128Load = (offset = 0) => [...simd(0x00), 4, ...uleb(offset)];
const v128Store = [...simd(0x0b), 4, 0];
const v128Load64Zero = (offset: number) => [...simd(0x5d), 3, ...uleb(offset)];
const v128Store64Lane = (offset: number) => [...simd(0x5b), 3, ...uleb(offset), 0];
const F32X4_SPLAT = simd(0x13);
const F64X2_SPLAT = simd(0x14);
const F32X4_ADD = simd(0xe4);
const F32X4_SUB = simd(0xe5);
const F32X4_MUL = simd(0xe6);
const F32X4_DIV = simd(0xe7);
const F64X2_ADD = simd(0xf0);
const F64X2_SUB = simd(0xf1);
const F64X2_MUL = simd(0xf2);
const F32X4_DEMOTE_F64X2_ZERO = simd(0x5e);
const F64X2_PROMOTE_LOW_F32X4 = simd(0x5f);

/**
 * `for (i = 0; i < byteLength; i += 16) body`, with `i` in local `i` and the length in local `len`.
 * Lengths are rounded up to whole vectors by the caller, who pads the buffers.
 */
function loop16(i: number, len: number, body: number[]): number[] {
  return [
    0x02, 0x40, // block
    0x03, 0x40, // loop
    ...get(i), ...get(len), ...I32_GE_U, 0x0d, 1, // br_if out of the block
    ...body,
    ...get(i), ...i32Const(16), ...I32_ADD, ...set(i),
    0x0c, 0, // br to the loop
    0x0b, 0x0b, // end loop, end block
  ];
}

function functionBody(locals: [count: number, type: number][], code: number[]): number[] {
  const body = [...vec(locals.map(([count, type]) => [...uleb(count), type])), ...code, 0x0b];
  return [...uleb(body.length), ...body];
}

/** guidance(uncondPtr, condPtr, byteLength, g): in place over the uncond bytes, in float64 lanes. */
function guidanceBody(): number[] {
  const [u, c, len, g, i, gv] = [0, 1, 2, 3, 4, 5];
  // One float64 pair at a time: uncond + g·(cond − uncond), as the JS expression evaluates it.
  const pair = (offset: number) => [
    ...get(u), ...get(i), ...I32_ADD,
    ...get(u), ...get(i), ...I32_ADD, ...v128Load64Zero(offset), ...F64X2_PROMOTE_LOW_F32X4,
    ...get(gv),
    ...get(c), ...get(i), ...I32_ADD, ...v128Load64Zero(offset), ...F64X2_PROMOTE_LOW_F32X4,
    ...get(u), ...get(i), ...I32_ADD, ...v128Load64Zero(offset), ...F64X2_PROMOTE_LOW_F32X4,
    ...F64X2_SUB, ...F64X2_MUL, ...F64X2_ADD,
    ...F32X4_DEMOTE_F64X2_ZERO,
    ...v128Store64Lane(offset),
  ];
  return functionBody(
    [[1, I32], [1, V128]],
    [...get(g), ...F64X2_SPLAT, ...set(gv), ...loop16(i, len, [...pair(0), ...pair(8)])],
  );
}

/**
 * The f32x4 kernels' arithmetic, as expressions over four elements at a time: `input(k)` loads the
 * k-th operand array's vector, `param(k)` is the k-th float32 argument in every lane, `constant(v)`
 * a float32 constant in every lane. Each operation rounds to float32, as one `f(...)` in the JS loops.
 */
interface Lanes {
  input(k: number): number[];
  param(k: number): number[];
  constant(value: number): number[];
}
const add = (a: number[], b: number[]) => [...a, ...b, ...F32X4_ADD];
const sub = (a: number[], b: number[]) => [...a, ...b, ...F32X4_SUB];
const mul = (a: number[], b: number[]) => [...a, ...b, ...F32X4_MUL];
const div = (a: number[], b: number[]) => [...a, ...b, ...F32X4_DIV];

interface F32x4Kernel {
  /** Operand arrays: pointers, then the byte length of each, then `params` float32 arguments. */
  inputs: number;
  params: number;
  expression: (lanes: Lanes) => number[];
}

/** PNDM's formula (9) for epsilon prediction over params sampleCoeff, alphaDiff, denomCoeff. */
const pndmPrev = ({ input, param }: Lanes, eps: number[]) =>
  sub(mul(param(0), input(0)), div(mul(param(1), eps), param(2)));

/** The f32x4 kernels, each computing the expression over its inputs and storing it over input 0. */
const F32X4_KERNELS = {
  // ap·((x − b·m) / a) + d·m
  ddim: { inputs: 2, params: 4, expression: ({ input, param }) =>
    add(mul(param(2), div(sub(input(0), mul(param(0), input(1))), param(1))), mul(param(3), input(1))) },
  divide: { inputs: 1, params: 1, expression: ({ input, param }) => div(input(0), param(0)) },
  // x + ((x − (x − sigmaHat·m)) / sigmaHat)·dt
  euler: { inputs: 2, params: 2, expression: ({ input, param }) =>
    add(input(0), mul(div(sub(input(0), sub(input(0), mul(param(0), input(1)))), param(0)), param(1))) },
  // (x + ((x − (x − sigma·m)) / sigma)·dt) + noise·sigmaUp
  eulerAncestral: { inputs: 3, params: 3, expression: ({ input, param }) =>
    add(
      add(input(0), mul(div(sub(input(0), sub(input(0), mul(param(0), input(1)))), param(0)), param(1))),
      mul(input(2), param(2)),
    ) },
  // (x − sigma·m) / alpha
  dpmData: { inputs: 2, params: 2, expression: ({ input, param }) => div(sub(input(0), mul(param(0), input(1))), param(1)) },
  // a·x − b·m0
  dpm1: { inputs: 2, params: 2, expression: ({ input, param }) => sub(mul(param(0), input(0)), mul(param(1), input(1))) },
  // (a·x − b·m0) − c·(invR0·(m0 − m1))
  dpm2: { inputs: 3, params: 4, expression: ({ input, param }) =>
    sub(
      sub(mul(param(0), input(0)), mul(param(1), input(1))),
      mul(param(2), mul(param(3), sub(input(1), input(2)))),
    ) },
  plms1: { inputs: 2, params: 3, expression: (lanes) => pndmPrev(lanes, lanes.input(1)) },
  // (m + previous) / 2
  plmsRepeat: { inputs: 3, params: 3, expression: (lanes) =>
    pndmPrev(lanes, div(add(lanes.input(1), lanes.input(2)), lanes.constant(2))) },
  // (3·e1 − e2) / 2
  plms2: { inputs: 3, params: 3, expression: (lanes) => {
    const { input, constant: c } = lanes;
    return pndmPrev(lanes, div(sub(mul(c(3), input(1)), input(2)), c(2)));
  } },
  // ((23·e1 − 16·e2) + 5·e3) / 12
  plms3: { inputs: 4, params: 3, expression: (lanes) => {
    const { input, constant: c } = lanes;
    return pndmPrev(lanes, div(add(sub(mul(c(23), input(1)), mul(c(16), input(2))), mul(c(5), input(3))), c(12)));
  } },
  // (1/24)·(((55·e1 − 59·e2) + 37·e3) − 9·e4)
  plms4: { inputs: 5, params: 3, expression: (lanes) => {
    const { input, constant: c } = lanes;
    const sum = sub(add(sub(mul(c(55), input(1)), mul(c(59), input(2))), mul(c(37), input(3))), mul(c(9), input(4)));
    return pndmPrev(lanes, mul(c(Math.fround(1 / 24)), sum));
  } },
  // cOut·((x − sqrtBeta·m) / sqrtAlpha) + cSkip·x, over params sqrtBeta, sqrtAlpha, cOut, cSkip
  lcmLast: { inputs: 2, params: 4, expression: ({ input, param }) =>
    add(mul(param(2), div(sub(input(0), mul(param(0), input(1))), param(1))), mul(param(3), input(0))) },
  // sqrtAlphaPrev·denoised + sqrtBetaPrev·noise, the same params then sqrtAlphaPrev, sqrtBetaPrev
  lcm: { inputs: 3, params: 6, expression: ({ input, param }) =>
    add(
      mul(param(4), add(mul(param(2), div(sub(input(0), mul(param(0), input(1))), param(1))), mul(param(3), input(0)))),
      mul(param(5), input(2)),
    ) },
} satisfies Record<string, F32x4Kernel>;

type F32x4KernelName = keyof typeof F32X4_KERNELS;

/** f32.const: the value's little-endian IEEE 754 single bytes. */
function f32Const(value: number): number[] {
  const view = new DataView(new ArrayBuffer(4));
  view.setFloat32(0, value, true);
  return [0x43, ...new Uint8Array(view.buffer)];
}

/**
 * kernel(input0Ptr, …, byteLength, param0, …): `for (i = 0; i < byteLength; i += 16)
 * input0[i] = expression`, parameters and constants splatted into v128 locals before the loop.
 */
function f32x4Body({ inputs, params, expression }: F32x4Kernel): number[] {
  const len = inputs;
  const i = inputs + 1 + params;
  const constants: number[] = [];
  const code = expression({
    input: (k) => [...get(k), ...get(i), ...I32_ADD, ...v128Load()],
    param: (k) => get(i + 1 + k),
    constant: (value) => {
      if (Math.fround(value) !== value) throw new Error(`constant ${value} is not a float32 value`);
      const k = constants.includes(value) ? constants.indexOf(value) : constants.push(value) - 1;
      return get(i + 1 + params + k);
    },
  });
  const splats = [
    ...Array.from({ length: params }, (_, k) => [...get(len + 1 + k), ...F32X4_SPLAT, ...set(i + 1 + k)]),
    ...constants.map((value, k) => [...f32Const(value), ...F32X4_SPLAT, ...set(i + 1 + params + k)]),
  ].flat();
  const store = [...get(0), ...get(i), ...I32_ADD, ...code, ...v128Store];
  return functionBody([[1, I32], [params + constants.length, V128]], [...splats, ...loop16(i, len, store)]);
}

const F32X4_NAMES = Object.keys(F32X4_KERNELS) as F32x4KernelName[];

/** The module: one exported memory, guidance and the f32x4 kernels. */
export function kernelModuleBytes(): Uint8Array<ArrayBuffer> {
  const funcType = (params: number[]) => [0x60, ...vec(params.map((p) => [p])), ...vec([])];
  const kernels = F32X4_NAMES.map((name) => F32X4_KERNELS[name]);
  const types = [
    funcType([I32, I32, I32, F64]),
    ...kernels.map(({ inputs, params }) => funcType([...Array<number>(inputs + 1).fill(I32), ...Array<number>(params).fill(F32)])),
  ];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // "\0asm", version 1
    ...section(1, vec(types)),
    ...section(3, vec(types.map((_, k) => uleb(k)))), // function k has type k
    ...section(5, vec([[0x00, ...uleb(1)]])), // memory: 1 page to start, grown on demand
    ...section(7, vec([
      [...name('memory'), 0x02, 0],
      [...name('guidance'), 0x00, 0],
      ...F32X4_NAMES.map((kernel, k) => [...name(kernel), 0x00, ...uleb(k + 1)]),
    ])),
    ...section(10, vec([guidanceBody(), ...kernels.map(f32x4Body)])),
  ]);
}

type KernelExports = {
  memory: WebAssembly.Memory;
  guidance(uncond: number, cond: number, byteLength: number, g: number): void;
} & Record<F32x4KernelName, (...args: number[]) => void>;

const PAGE = 65536;
/** Floats rounded up to whole 16-byte vectors: the kernels run on padded buffers and never need a scalar tail. */
const padded = (floats: number) => (floats + 3) & ~3;

function wasmKernels(exports: KernelExports): Kernels {
  const { memory } = exports;
  let heap = new Float32Array(memory.buffer);
  // Operand regions per call; the kernels are synchronous, so all of them share one memory.
  const reserve = (floats: number) => {
    const bytes = floats * 4;
    if (bytes > memory.buffer.byteLength) {
      memory.grow(Math.ceil((bytes - memory.buffer.byteLength) / PAGE));
      heap = new Float32Array(memory.buffer);
    }
  };
  /**
   * Runs an f32x4 kernel over the first input's length, into a fresh array, or returns undefined
   * when an input is shorter: the JS loop reads NaN there, so the caller runs that instead rather
   * than compute from stale memory.
   */
  const run = (kernel: F32x4KernelName, inputs: readonly Float32Array[], params: readonly number[]): Float32Array | undefined => {
    const n = inputs[0]!.length;
    for (const input of inputs) if (input.length < n) return undefined;
    const stride = padded(n);
    reserve(inputs.length * stride);
    for (let k = 0; k < inputs.length; k++) heap.set(inputs[k]!.subarray(0, n), k * stride);
    const pointers = inputs.map((_, k) => k * stride * 4);
    exports[kernel](...pointers, stride * 4, ...params);
    return heap.slice(0, n);
  };
  return {
    guidance(prediction, g) {
      const half = prediction.length >>> 1;
      const second = padded(half);
      reserve(2 * second);
      heap.set(prediction.subarray(0, half), 0);
      heap.set(prediction.subarray(half, 2 * half), second);
      exports.guidance(0, second * 4, second * 4, g);
      prediction.set(heap.subarray(0, half));
      return prediction.subarray(0, half);
    },
    ddimEpsilon(sample, modelOutput, sqrtBeta, sqrtAlpha, sqrtAlphaPrev, directionCoeff) {
      return (
        run('ddim', [sample, modelOutput], [sqrtBeta, sqrtAlpha, sqrtAlphaPrev, directionCoeff]) ??
        jsKernels.ddimEpsilon(sample, modelOutput, sqrtBeta, sqrtAlpha, sqrtAlphaPrev, directionCoeff)
      );
    },
    divide(sample, divisor) {
      return run('divide', [sample], [divisor])!;
    },
    eulerEpsilon(sample, modelOutput, sigmaHat, dt) {
      return run('euler', [sample, modelOutput], [sigmaHat, dt]) ?? jsKernels.eulerEpsilon(sample, modelOutput, sigmaHat, dt);
    },
    eulerAncestralEpsilon(sample, modelOutput, noise, sigma, dt, sigmaUp) {
      return (
        run('eulerAncestral', [sample, modelOutput, noise], [sigma, dt, sigmaUp]) ??
        jsKernels.eulerAncestralEpsilon(sample, modelOutput, noise, sigma, dt, sigmaUp)
      );
    },
    dpmDataPrediction(sample, modelOutput, sigma, alpha) {
      return run('dpmData', [sample, modelOutput], [sigma, alpha]) ?? jsKernels.dpmDataPrediction(sample, modelOutput, sigma, alpha);
    },
    dpmFirstOrder(sample, m0, a, b) {
      return run('dpm1', [sample, m0], [a, b]) ?? jsKernels.dpmFirstOrder(sample, m0, a, b);
    },
    dpmSecondOrder(sample, m0, m1, a, b, c, invR0) {
      return run('dpm2', [sample, m0, m1], [a, b, c, invR0]) ?? jsKernels.dpmSecondOrder(sample, m0, m1, a, b, c, invR0);
    },
    plms(sample, ets, sampleCoeff, alphaDiff, denomCoeff) {
      const kernel = (['plms1', 'plms2', 'plms3', 'plms4'] as const)[ets.length - 1];
      // The JS formula runs over the newest output's length: a shorter sample reads only its part.
      const result = kernel && sample.length <= ets[0]!.length ? run(kernel, [sample, ...ets], [sampleCoeff, alphaDiff, denomCoeff]) : undefined;
      return result ?? jsKernels.plms(sample, ets, sampleCoeff, alphaDiff, denomCoeff);
    },
    plmsRepeat(sample, modelOutput, previous, sampleCoeff, alphaDiff, denomCoeff) {
      return (
        run('plmsRepeat', [sample, modelOutput, previous], [sampleCoeff, alphaDiff, denomCoeff]) ??
        jsKernels.plmsRepeat(sample, modelOutput, previous, sampleCoeff, alphaDiff, denomCoeff)
      );
    },
    lcmEpsilon(sample, modelOutput, noise, sqrtBeta, sqrtAlpha, cOut, cSkip, sqrtAlphaPrev, sqrtBetaPrev) {
      const result = noise
        ? run('lcm', [sample, modelOutput, noise], [sqrtBeta, sqrtAlpha, cOut, cSkip, sqrtAlphaPrev, sqrtBetaPrev])
        : run('lcmLast', [sample, modelOutput], [sqrtBeta, sqrtAlpha, cOut, cSkip]);
      return result ?? jsKernels.lcmEpsilon(sample, modelOutput, noise, sqrtBeta, sqrtAlpha, cOut, cSkip, sqrtAlphaPrev, sqrtBetaPrev);
    },
  };
}

/**
 * The SIMD kernels when this runtime validates and instantiates the module, else the JS loops.
 * `validate` is a parameter so that tests can take the fallback path.
 */
export function selectKernels(validate: (bytes: Uint8Array<ArrayBuffer>) => boolean = (bytes) => WebAssembly.validate(bytes)): Kernels {
  if (typeof WebAssembly !== 'object') return jsKernels;
  const bytes = kernelModuleBytes();
  try {
    if (!validate(bytes)) return jsKernels;
    const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes));
    return wasmKernels(instance.exports as unknown as KernelExports);
  } catch {
    return jsKernels;
  }
}

/** What the pipeline and the schedulers call. */
export const kernels: Kernels = selectKernels();
