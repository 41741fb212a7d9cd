// Building ONNX graphs with onnx-proto for the generated models (tiny-model.ts, sd15-model.ts):
// float formats, a seedable weight generator, and a graph builder whose learned weights can live
// in an external data file (the ONNX external-data convention: a tensor's data_location EXTERNAL
// with location / offset / length). A weight's values are made only when its bytes are written,
// one tensor at a time, so a graph of gigabytes is described, counted and streamed to disk without
// ever being held whole.
import { open } from 'node:fs/promises';
import { endianness } from 'node:os';
import onnxProto from 'onnx-proto';
import { toHalfBits } from './tensors.ts';

const { onnx } = onnxProto;
const { DataType, DataLocation } = onnx.TensorProto;
const { AttributeType } = onnx.AttributeProto;

export { DataType };

const OPSET = 17;
const IR_VERSION = 8;
const LITTLE_ENDIAN = endianness() === 'LE';

export interface FloatFormat {
  dataType: number;
  bytesPerValue: number;
  /** Little-endian bytes, as ONNX stores raw data. */
  encode(values: ArrayLike<number>): Uint8Array;
}

export const FLOAT32: FloatFormat = {
  dataType: DataType.FLOAT,
  bytesPerValue: 4,
  encode(values) {
    if (LITTLE_ENDIAN) {
      // The typed array's own bytes: a loop of writeFloatLE takes seconds over SD 1.5's billion weights.
      const floats = values instanceof Float32Array ? values : Float32Array.from(values);
      return new Uint8Array(floats.buffer, floats.byteOffset, floats.byteLength);
    }
    const out = Buffer.alloc(values.length * 4);
    for (let i = 0; i < values.length; i++) out.writeFloatLE(values[i]!, i * 4);
    return out;
  },
};

export const FLOAT16: FloatFormat = {
  dataType: DataType.FLOAT16,
  bytesPerValue: 2,
  encode(values) {
    const out = Buffer.alloc(values.length * 2);
    for (let i = 0; i < values.length; i++) out.writeUInt16LE(toHalfBits(values[i]!), i * 2);
    return out;
  },
};

/** mulberry32, plus Box–Muller for normals: small, seedable, and the same numbers on every platform. */
export class WeightRandom {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  private uniform(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  normal(): number {
    return Math.sqrt(-2 * Math.log(1 - this.uniform())) * Math.cos(2 * Math.PI * this.uniform());
  }

  /**
   * Fills `out` uniformly with the given mean and standard deviation (as PyTorch's default
   * kaiming_uniform init is uniform): one draw per value, where a normal costs two and a logarithm.
   */
  fillUniform(out: Float32Array, mean: number, std: number): Float32Array {
    const halfWidth = std * Math.sqrt(3);
    for (let i = 0; i < out.length; i++) out[i] = mean + halfWidth * (2 * this.uniform() - 1);
    return out;
  }
}

export type Dim = number | string;

export function valueInfo(name: string, elemType: number, dims: Dim[]): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

/** One tensor of an external data file: where it goes and how to make its bytes. */
export interface ExternalTensor {
  offset: number;
  length: number;
  bytes: () => Uint8Array;
}

export interface BuiltModel {
  model: Uint8Array;
  /** The weights kept beside the model, in file order; empty when they are inside it. */
  external: ExternalTensor[];
  /** Elements of learned weights (what a parameter count counts; constants are not). */
  parameters: number;
}

/** The external data in one buffer, for models small enough to hold. */
export function externalDataBytes(built: BuiltModel): Uint8Array {
  const last = built.external.at(-1);
  const out = Buffer.alloc(last ? last.offset + last.length : 0);
  for (const tensor of built.external) out.set(tensor.bytes(), tensor.offset);
  return out;
}

/** Streams the external data to `file` one tensor at a time: memory holds one tensor, not the file. */
export async function writeExternalData(file: string, built: BuiltModel): Promise<void> {
  const handle = await open(file, 'w');
  try {
    for (const tensor of built.external) {
      const bytes = tensor.bytes();
      if (bytes.length !== tensor.length) throw new Error(`external tensor at ${tensor.offset}: ${bytes.length} bytes, declared ${tensor.length}`);
      await handle.write(bytes, 0, bytes.length, tensor.offset);
    }
  } finally {
    await handle.close();
  }
}

export interface GraphOptions {
  /** The external data file beside model.onnx that float tensors go to; none: inside the model. */
  externalFile?: string;
  /**
   * Weights drawn uniformly when their bytes are written (fast, and nothing held until then), where
   * the default draws normals at declaration: the tiny model's files stay as they were.
   */
  deferred?: boolean;
  /**
   * External tensors of at least this many bytes start at a multiple of it, as onnx's
   * convert_model_to_external_data aligns them (64 KiB), so that a runtime may map them in place.
   */
  align?: number;
}

/** Builds one graph; float weights go to `options.externalFile` (beside model.onnx) when one is given. */
export class GraphBuilder {
  private readonly nodes: onnxProto.onnx.INodeProto[] = [];
  private readonly initializers = new Map<string, onnxProto.onnx.ITensorProto>();
  private readonly external: ExternalTensor[] = [];
  private externalLength = 0;
  private parameters = 0;

  constructor(
    readonly float: FloatFormat,
    private readonly random: WeightRandom,
    private readonly options: GraphOptions = {},
  ) {}

  /** A learned tensor: `mean` plus noise of standard deviation `std`. */
  weight(name: string, dims: number[], std: number, mean = 0): string {
    const size = dims.reduce((a, b) => a * b, 1);
    this.parameters += size;
    if (this.options.deferred) return this.floats(name, dims, () => this.random.fillUniform(new Float32Array(size), mean, std));
    const values = new Float32Array(size);
    for (let i = 0; i < values.length; i++) values[i] = mean + std * this.random.normal();
    return this.floats(name, dims, values);
  }

  /** A float tensor in the model's precision; external when the graph keeps its weights apart. */
  floats(name: string, dims: number[], values: ArrayLike<number> | (() => ArrayLike<number>)): string {
    const make = typeof values === 'function' ? values : () => values;
    if (this.options.externalFile === undefined) return this.constant(name, dims, make());
    const length = dims.reduce((a, b) => a * b, 1) * this.float.bytesPerValue;
    const align = this.options.align ?? 1;
    const offset = length >= align ? Math.ceil(this.externalLength / align) * align : this.externalLength;
    this.external.push({ offset, length, bytes: () => this.float.encode(make()) });
    this.externalLength = offset + length;
    return this.initializer({
      name,
      dims,
      dataType: this.float.dataType,
      dataLocation: DataLocation.EXTERNAL,
      externalData: [
        { key: 'location', value: this.options.externalFile },
        { key: 'offset', value: String(offset) },
        { key: 'length', value: String(length) },
      ],
    });
  }

  /** A float tensor in the model's precision kept inside the model, as exporters keep small constants. */
  constant(name: string, dims: number[], values: ArrayLike<number>): string {
    return this.initializer({ name, dims, dataType: this.float.dataType, rawData: this.float.encode(values) });
  }

  /** Always inline, like the small tensors exporters keep below their external-data size threshold. */
  float32s(name: string, values: number[]): string {
    return this.initializer({ name, dims: [values.length], dataType: DataType.FLOAT, rawData: FLOAT32.encode(values) });
  }

  int64s(name: string, values: number[]): string {
    return this.initializer({ name, dims: [values.length], dataType: DataType.INT64, int64Data: values });
  }

  op(type: string, inputs: string[], attributes: Record<string, number | number[] | string> = {}, output?: string): string {
    const name = `${type}_${this.nodes.length}`;
    const result = output ?? name;
    this.nodes.push({
      name,
      opType: type,
      input: inputs,
      output: [result],
      attribute: Object.entries(attributes).map(([key, value]) =>
        typeof value === 'string'
          ? { name: key, type: AttributeType.STRING, s: Buffer.from(value) }
          : Array.isArray(value)
            ? { name: key, type: AttributeType.INTS, ints: value }
            : // Integers as INT; a fraction (an epsilon) as FLOAT.
              Number.isInteger(value)
              ? { name: key, type: AttributeType.INT, i: value }
              : { name: key, type: AttributeType.FLOAT, f: value },
      ),
    });
    return result;
  }

  /**
   * x·W + b with W of shape [inFeatures, outFeatures] (as exporters store a Linear's weight for
   * MatMul), scaled so activations keep unit size, or `gain` times that.
   */
  linear(name: string, x: string, inFeatures: number, outFeatures: number, options: { bias?: boolean; gain?: number } = {}): string {
    const w = this.weight(`${name}.weight`, [inFeatures, outFeatures], (options.gain ?? 1) / Math.sqrt(inFeatures));
    const product = this.op('MatMul', [x, w]);
    if (options.bias === false) return product;
    return this.op('Add', [product, this.weight(`${name}.bias`, [outFeatures], 0.1)]);
  }

  /** A convolution with a square kernel, zero padding that keeps the size at stride 1, and a bias. */
  conv(name: string, x: string, inChannels: number, outChannels: number, kernel: number, options: { stride?: number; gain?: number } = {}): string {
    const fanIn = inChannels * kernel * kernel;
    const w = this.weight(`${name}.weight`, [outChannels, inChannels, kernel, kernel], (options.gain ?? 1) / Math.sqrt(fanIn));
    const b = this.weight(`${name}.bias`, [outChannels], 0.1);
    const pad = (kernel - 1) / 2;
    const stride = options.stride ?? 1;
    return this.op('Conv', [x, w, b], { kernel_shape: [kernel, kernel], pads: [pad, pad, pad, pad], ...(stride === 1 ? {} : { strides: [stride, stride] }) });
  }

  silu(x: string): string {
    return this.op('Mul', [x, this.op('Sigmoid', [x])]);
  }

  model(
    inputs: onnxProto.onnx.IValueInfoProto[],
    outputs: onnxProto.onnx.IValueInfoProto[],
    names: { producer: string; graph: string },
  ): BuiltModel {
    const model = onnx.ModelProto.encode({
      irVersion: IR_VERSION,
      opsetImport: [{ domain: '', version: OPSET }],
      producerName: names.producer,
      graph: {
        name: names.graph,
        node: this.nodes,
        initializer: [...this.initializers.values()],
        input: inputs,
        output: outputs,
      },
    }).finish();
    return { model, external: this.external, parameters: this.parameters };
  }

  /** Shared constants (axes) are declared once however often they are used. */
  private initializer(tensor: onnxProto.onnx.ITensorProto & { name: string }): string {
    if (!this.initializers.has(tensor.name)) this.initializers.set(tensor.name, tensor);
    return tensor.name;
  }
}
