// Moving float data in and out of onnxruntime sessions: float16 graphs take and give the bits
// (tensors.ts), and graphs exported with a fixed batch are run one slice at a time.
import { fromHalf, halfBits, halfTensor, toHalf } from './tensors.ts';
import ort from 'onnxruntime-node';

export function floatTensor(data: Float32Array, dims: number[], type: 'float32' | 'float16'): ort.Tensor {
  return type === 'float16' ? halfTensor(toHalf(data), dims) : new ort.Tensor('float32', data, dims);
}

function readFloats(tensor: ort.Tensor): Float32Array {
  if (tensor.type === 'float16') return fromHalf(halfBits(tensor.data));
  if (tensor.type === 'float32') return tensor.data as Float32Array;
  throw new Error(`unexpected output type ${tensor.type}`);
}

/** Runs `session` on batch slices when the graph's batch is fixed (e.g. 1), else in one call. */
export async function runBatched(
  session: ort.InferenceSession,
  fixedBatch: number | null,
  batch: number,
  feeds: (start: number, count: number) => Record<string, ort.Tensor>,
  output: string,
): Promise<Float32Array> {
  const step = fixedBatch ?? batch;
  if (batch % step !== 0) throw new Error(`batch ${batch} is not a multiple of the model's fixed batch ${step}`);
  const parts: Float32Array[] = [];
  for (let start = 0; start < batch; start += step) {
    const result = await session.run(feeds(start, step));
    parts.push(readFloats(result[output]!));
  }
  if (parts.length === 1) return parts[0]!;
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}
