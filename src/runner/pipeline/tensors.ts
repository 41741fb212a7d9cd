// Float16 conversion for fp16 models, and their tensors: onnxruntime-node takes and returns float16
// data as the bits, in a Uint16Array, or where the runtime has Float16Array (Node 24 has, Node 20 had
// not) in a Float16Array view of them; halfTensor and halfBits work with both.
import ort from 'onnxruntime-node';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE 754 binary16 bits of `value`, rounded to nearest even, as numpy's float32 → float16 cast. */
export function toHalfBits(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // inf / nan
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow → inf
  if (e <= 0) {
    if (e < -10) return sign; // underflow → signed zero
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let m = mant >>> shift;
    if (rest > half || (rest === half && (m & 1))) m += 1;
    return sign | m;
  }
  const rest = mant & 0x1fff;
  mant >>>= 13;
  if (rest > 0x1000 || (rest === 0x1000 && (mant & 1))) {
    mant += 1;
    if (mant === 0x400) {
      mant = 0;
      e += 1;
      if (e >= 0x1f) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | mant;
}

export function fromHalfBits(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

export function toHalf(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = toHalfBits(values[i]!);
  return out;
}

export function fromHalf(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = fromHalfBits(bits[i]!);
  return out;
}

/**
 * A float16 tensor of `bits` that onnxruntime-node's binding can read. Where Float16Array exists,
 * onnxruntime-common keeps float16 data as a Float16Array view, and the binding of onnxruntime-node
 * 1.30 takes that view's size from node-addon-api's element-size table, which predates Float16Array:
 * 0 bytes, and the run fails with "not enough space: expected N, got 0" (microsoft/onnxruntime#32323,
 * open). The binding reads the tensor's `data`, so that is made the Uint16Array itself, which it
 * sizes right; on Node 20 it already is.
 */
export function halfTensor(bits: Uint16Array, dims: readonly number[]): ort.Tensor {
  const tensor = new ort.Tensor('float16', bits, dims);
  if (tensor.data !== bits) Object.defineProperty(tensor, 'data', { value: bits });
  return tensor;
}

/** The bits of a float16 tensor's data, which is a Uint16Array, or where Float16Array exists a view of one. */
export function halfBits(data: ort.Tensor['data']): Uint16Array {
  if (data instanceof Uint16Array) return data;
  const view = data as ArrayBufferView;
  return new Uint16Array(view.buffer, view.byteOffset, view.byteLength / 2);
}
