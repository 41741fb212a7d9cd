// The WebAssembly SIMD kernels: the module's functions (guidance in f64x2 lanes, the schedulers'
// steps as f32x4 expressions), its bytes, and the Kernels over an instance of it.
//
// They must give the same values as the JS loops, bit for bit (same request, same seed, same
// bytes): f32x4 arithmetic rounds every operation to float32, which is what the Math.fround chains
// of the schedulers' loops compute (a single +, −, × or ÷ of two float32 values in float64, rounded
// once on store, is the float32 operation too), and guidance, which JS computes in float64 and
// rounds once on store, runs in f64x2 lanes and is demoted once. No fused multiply-add is involved
// on either side.
import { jsKernels } from './reference.ts';
import type { Kernels, PndmCoefficients } from './types.ts';
import {
  add,
  div,
  F32,
  F32X4_DEMOTE_F64X2_ZERO,
  type F32x4Kernel,
  f32x4Body,
  F64,
  F64X2_ADD,
  F64X2_MUL,
  F64X2_PROMOTE_LOW_F32X4,
  F64X2_SPLAT,
  F64X2_SUB,
  functionBody,
  get,
  I32,
  I32_ADD,
  type Lanes,
  loop16,
  mul,
  name,
  section,
  set,
  sub,
  uleb,
  V128,
  v128Load64Zero,
  v128Store64Lane,
  vec,
} from './wasm-encoder.ts';

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

export type KernelExports = {
  memory: WebAssembly.Memory;
  guidance(uncond: number, cond: number, byteLength: number, g: number): void;
} & Record<F32x4KernelName, (...args: number[]) => void>;

const PAGE = 65536;
/** Floats rounded up to whole 16-byte vectors: the kernels run on padded buffers and never need a scalar tail. */
const padded = (floats: number) => (floats + 3) & ~3;

export function wasmKernels(exports: KernelExports): Kernels {
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
    ddimEpsilon(sample, modelOutput, c) {
      return (
        run('ddim', [sample, modelOutput], [c.sqrtBeta, c.sqrtAlpha, c.sqrtAlphaPrev, c.directionCoeff]) ??
        jsKernels.ddimEpsilon(sample, modelOutput, c)
      );
    },
    divide(sample, divisor) {
      return run('divide', [sample], [divisor])!;
    },
    eulerEpsilon(sample, modelOutput, sigmaHat, dt) {
      return run('euler', [sample, modelOutput], [sigmaHat, dt]) ?? jsKernels.eulerEpsilon(sample, modelOutput, sigmaHat, dt);
    },
    eulerAncestralEpsilon(sample, modelOutput, noise, c) {
      return (
        run('eulerAncestral', [sample, modelOutput, noise], [c.sigma, c.dt, c.sigmaUp]) ??
        jsKernels.eulerAncestralEpsilon(sample, modelOutput, noise, c)
      );
    },
    dpmDataPrediction(sample, modelOutput, sigma, alpha) {
      return run('dpmData', [sample, modelOutput], [sigma, alpha]) ?? jsKernels.dpmDataPrediction(sample, modelOutput, sigma, alpha);
    },
    dpmFirstOrder(sample, m0, a, b) {
      return run('dpm1', [sample, m0], [a, b]) ?? jsKernels.dpmFirstOrder(sample, m0, a, b);
    },
    dpmSecondOrder(sample, m0, m1, c) {
      return run('dpm2', [sample, m0, m1], [c.a, c.b, c.c, c.invR0]) ?? jsKernels.dpmSecondOrder(sample, m0, m1, c);
    },
    plms(sample, ets, c) {
      const kernel = (['plms1', 'plms2', 'plms3', 'plms4'] as const)[ets.length - 1];
      // The JS formula runs over the newest output's length: a shorter sample reads only its part.
      const result = kernel && sample.length <= ets[0]!.length ? run(kernel, [sample, ...ets], pndmParams(c)) : undefined;
      return result ?? jsKernels.plms(sample, ets, c);
    },
    plmsRepeat(sample, modelOutput, previous, c) {
      return run('plmsRepeat', [sample, modelOutput, previous], pndmParams(c)) ?? jsKernels.plmsRepeat(sample, modelOutput, previous, c);
    },
    lcmEpsilon(sample, modelOutput, noise, c) {
      const result = noise
        ? run('lcm', [sample, modelOutput, noise], [c.sqrtBeta, c.sqrtAlpha, c.cOut, c.cSkip, c.sqrtAlphaPrev, c.sqrtBetaPrev])
        : run('lcmLast', [sample, modelOutput], [c.sqrtBeta, c.sqrtAlpha, c.cOut, c.cSkip]);
      return result ?? jsKernels.lcmEpsilon(sample, modelOutput, noise, c);
    },
  };
}

const pndmParams = (c: PndmCoefficients) => [c.sampleCoeff, c.alphaDiff, c.denomCoeff];
