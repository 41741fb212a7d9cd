// WebAssembly SIMD kernels for the two element-wise loops of every denoising step: classifier-free
// guidance and DDIM's epsilon step (Stable Diffusion's configuration). As plain JS they are most of
// the work a step does outside onnxruntime; SIMD lanes (four float32 or two float64 per
// instruction) cut it to a fraction.
//
// They must give the same values as the JS loops, bit for bit (same request, same seed, same
// bytes): f32x4 arithmetic rounds every operation to float32, which is what the Math.fround chains
// of the JS DDIM loop compute, and guidance, which JS computes in float64 and rounds once on store,
// runs in f64x2 lanes and is demoted once. No fused multiply-add is involved on either side.
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
};

// --- A minimal WebAssembly binary emitter: only what the two kernels need. ---

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

/** ddim(samplePtr, outputPtr, byteLength, sqrtBeta, sqrtAlpha, sqrtAlphaPrev, directionCoeff): in place over the sample. */
function ddimBody(): number[] {
  const [x, m, len, sqrtBeta, sqrtAlpha, sqrtAlphaPrev, direction] = [0, 1, 2, 3, 4, 5, 6];
  const [i, vBeta, vAlpha, vAlphaPrev, vDirection, mv] = [7, 8, 9, 10, 11, 12];
  const splat = (from: number, to: number) => [...get(from), ...F32X4_SPLAT, ...set(to)];
  const body = [
    ...get(m), ...get(i), ...I32_ADD, ...v128Load(), ...set(mv),
    ...get(x), ...get(i), ...I32_ADD, // store address
    ...get(vAlphaPrev),
    ...get(x), ...get(i), ...I32_ADD, ...v128Load(),
    ...get(vBeta), ...get(mv), ...F32X4_MUL,
    ...F32X4_SUB,
    ...get(vAlpha), ...F32X4_DIV,
    ...F32X4_MUL,
    ...get(vDirection), ...get(mv), ...F32X4_MUL,
    ...F32X4_ADD,
    ...v128Store,
  ];
  return functionBody(
    [[1, I32], [5, V128]],
    [
      ...splat(sqrtBeta, vBeta),
      ...splat(sqrtAlpha, vAlpha),
      ...splat(sqrtAlphaPrev, vAlphaPrev),
      ...splat(direction, vDirection),
      ...loop16(i, len, body),
    ],
  );
}

/** The module: one exported memory and the two kernels. */
export function kernelModuleBytes(): Uint8Array<ArrayBuffer> {
  const funcType = (params: number[]) => [0x60, ...vec(params.map((p) => [p])), ...vec([])];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // "\0asm", version 1
    ...section(1, vec([funcType([I32, I32, I32, F64]), funcType([I32, I32, I32, F32, F32, F32, F32])])),
    ...section(3, vec([[0], [1]])),
    ...section(5, vec([[0x00, ...uleb(1)]])), // memory: 1 page to start, grown on demand
    ...section(7, vec([
      [...name('memory'), 0x02, 0],
      [...name('guidance'), 0x00, 0],
      [...name('ddim'), 0x00, 1],
    ])),
    ...section(10, vec([guidanceBody(), ddimBody()])),
  ]);
}

interface KernelExports {
  memory: WebAssembly.Memory;
  guidance(uncond: number, cond: number, byteLength: number, g: number): void;
  ddim(sample: number, output: number, byteLength: number, sqrtBeta: number, sqrtAlpha: number, sqrtAlphaPrev: number, direction: number): void;
}

const PAGE = 65536;
/** Floats rounded up to whole 16-byte vectors: the kernels run on padded buffers and never need a scalar tail. */
const padded = (floats: number) => (floats + 3) & ~3;

function wasmKernels(exports: KernelExports): Kernels {
  const { memory } = exports;
  let heap = new Float32Array(memory.buffer);
  // Two operand regions per call; the kernels are synchronous, so both kinds share one memory.
  const reserve = (floats: number) => {
    const bytes = floats * 4;
    if (bytes > memory.buffer.byteLength) {
      memory.grow(Math.ceil((bytes - memory.buffer.byteLength) / PAGE));
      heap = new Float32Array(memory.buffer);
    }
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
      const n = sample.length;
      // A shorter output would read as NaN in the JS loop; keep that behaviour rather than stale memory.
      if (modelOutput.length < n) return jsKernels.ddimEpsilon(sample, modelOutput, sqrtBeta, sqrtAlpha, sqrtAlphaPrev, directionCoeff);
      const second = padded(n);
      reserve(2 * second);
      heap.set(sample, 0);
      heap.set(modelOutput.subarray(0, n), second);
      exports.ddim(0, second * 4, second * 4, sqrtBeta, sqrtAlpha, sqrtAlphaPrev, directionCoeff);
      return heap.slice(0, n);
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
