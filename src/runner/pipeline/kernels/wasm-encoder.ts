// A minimal WebAssembly binary emitter: only what the kernels need (LEB128, sections, the SIMD
// opcodes they use, a 16-byte loop) and the f32x4 kernel template, which turns an expression over
// four lanes into a function that runs it over whole arrays.

/** Unsigned LEB128, the encoding of every count, index and SIMD opcode in the binary format. */
export function uleb(value: number): number[] {
  const bytes: number[] = [];
  do {
    let byte = value & 0x7f;
    value >>>= 7;
    if (value !== 0) byte |= 0x80;
    bytes.push(byte);
  } while (value !== 0);
  return bytes;
}

export const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
export const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];
export const name = (text: string): number[] => vec([...new TextEncoder().encode(text)].map((b) => [b]));

export const I32 = 0x7f;
export const F32 = 0x7d;
export const F64 = 0x7c;
export const V128 = 0x7b;

export const get = (local: number) => [0x20, ...uleb(local)];
export const set = (local: number) => [0x21, ...uleb(local)];
export const I32_ADD = [0x6a];
const I32_GE_U = [0x4f];
const i32Const = (v: number) => [0x41, ...uleb(v)]; // signed LEB128; equal to unsigned below 64
const simd = (op: number) => [0xfd, ...uleb(op)];
// memarg: log2 of the alignment hint, then a constant offset added to the address.
const v128Load = (offset = 0) => [...simd(0x00), 4, ...uleb(offset)];
const v128Store = [...simd(0x0b), 4, 0];
export const v128Load64Zero = (offset: number) => [...simd(0x5d), 3, ...uleb(offset)];
export const v128Store64Lane = (offset: number) => [...simd(0x5b), 3, ...uleb(offset), 0];
const F32X4_SPLAT = simd(0x13);
export const F64X2_SPLAT = simd(0x14);
const F32X4_ADD = simd(0xe4);
const F32X4_SUB = simd(0xe5);
const F32X4_MUL = simd(0xe6);
const F32X4_DIV = simd(0xe7);
export const F64X2_ADD = simd(0xf0);
export const F64X2_SUB = simd(0xf1);
export const F64X2_MUL = simd(0xf2);
export const F32X4_DEMOTE_F64X2_ZERO = simd(0x5e);
export const F64X2_PROMOTE_LOW_F32X4 = simd(0x5f);

/**
 * `for (i = 0; i < byteLength; i += 16) body`, with `i` in local `i` and the length in local `len`.
 * Lengths are rounded up to whole vectors by the caller, who pads the buffers.
 */
export function loop16(i: number, len: number, body: number[]): number[] {
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

export function functionBody(locals: [count: number, type: number][], code: number[]): number[] {
  const body = [...vec(locals.map(([count, type]) => [...uleb(count), type])), ...code, 0x0b];
  return [...uleb(body.length), ...body];
}

/**
 * The f32x4 kernels' arithmetic, as expressions over four elements at a time: `input(k)` loads the
 * k-th operand array's vector, `param(k)` is the k-th float32 argument in every lane, `constant(v)`
 * a float32 constant in every lane. Each operation rounds to float32, as one `f(...)` in the JS loops.
 */
export interface Lanes {
  input(k: number): number[];
  param(k: number): number[];
  constant(value: number): number[];
}
export const add = (a: number[], b: number[]) => [...a, ...b, ...F32X4_ADD];
export const sub = (a: number[], b: number[]) => [...a, ...b, ...F32X4_SUB];
export const mul = (a: number[], b: number[]) => [...a, ...b, ...F32X4_MUL];
export const div = (a: number[], b: number[]) => [...a, ...b, ...F32X4_DIV];

export interface F32x4Kernel {
  /** Operand arrays: pointers, then the byte length of each, then `params` float32 arguments. */
  inputs: number;
  params: number;
  expression: (lanes: Lanes) => number[];
}

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
export function f32x4Body({ inputs, params, expression }: F32x4Kernel): number[] {
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
