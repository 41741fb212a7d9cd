// The denoising step as one ONNX graph: the model folder's UNet with classifier-free guidance and
// an affine scheduler step around it (docs/architecture.md, decision 21). onnxruntime-node cannot
// keep a tensor on the GPU between two runs (its only device outputs are WebGPU buffers), so what
// would otherwise cross to the host between the UNet and the scheduler runs inside the UNet's own
// run instead: the batch of two for guidance is made on the device from one copy of the latents,
// float16 is cast there, and a step back comes out as float32 latents. Per step the host sends
// the latents and gets the next ones; it sends the prompt's states every step too, which the binding
// cannot keep on the device either.
//
// Inputs: `sample` (float32 [n, 4, h, w], the latents), the UNet's own `timestep` and
// `encoder_hidden_states` (batch r·n: r = 2 with guidance, 1 without), and float32 [1] scalars
// `guidance_scale`, `sample_divisor`, `sample_coeff`, `noise_coeff`. Outputs (float32 [n, 4, h, w]):
// `noise_pred`, the guided noise for a scheduler that steps on the host, and `prev_sample` =
// sample_coeff·sample + noise_coeff·noise_pred (schedulers/types.ts, AffineStep).
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
const { DataType } = onnx.TensorProto;
const { AttributeType } = onnx.AttributeProto;

/** Names the UNet's graph uses for its inputs, and the names its output may have (preferred first, else its first output). */
export interface UnetNames {
  sample: string;
  encoderHiddenStates: string;
  outputs: string[];
}

export const DENOISE_INPUTS = {
  guidanceScale: 'guidance_scale',
  sampleDivisor: 'sample_divisor',
  sampleCoeff: 'sample_coeff',
  noiseCoeff: 'noise_coeff',
} as const;
export const DENOISE_OUTPUTS = { noisePred: 'noise_pred', prevSample: 'prev_sample' } as const;

/** Why a UNet cannot be wrapped: the caller runs it as it is. */
export class DenoiseGraphError extends Error {
  override name = 'DenoiseGraphError';
}

/** Our values' prefix, so that no name of the UNet's graph can collide with them. */
const P = 'itemgen_denoise/';

/**
 * The UNet's ModelProto bytes → the denoising step's. External weights keep their `location`, so
 * the result loads with `session.model_external_initializers_file_folder_path` set to the UNet's
 * folder (model.ts), and nothing is written beside the model.
 */
export function buildDenoiseStepModel(unetBytes: Uint8Array, names: UnetNames): Uint8Array {
  let model: onnxProto.onnx.ModelProto;
  try {
    model = onnx.ModelProto.decode(unetBytes);
  } catch (err) {
    throw new DenoiseGraphError(`the UNet is not an ONNX model (${(err as Error).message})`);
  }
  // Decoded messages are class instances, with every repeated field an array.
  const graph = model.graph as onnxProto.onnx.GraphProto | null;
  if (!graph) throw new DenoiseGraphError('the UNet model has no graph');
  const sampleInput = graph.input.find((i) => i.name === names.sample);
  const unetFloat = sampleInput?.type?.tensorType?.elemType;
  if (unetFloat !== DataType.FLOAT && unetFloat !== DataType.FLOAT16) {
    throw new DenoiseGraphError(`the UNet's ${names.sample} is not float32 or float16`);
  }
  const batchDim = sampleInput!.type!.tensorType!.shape?.dim?.[0];
  if (batchDim?.dimValue !== undefined && batchDim.dimValue !== null && Number(batchDim.dimValue) > 0) {
    // Guidance's batch of two cannot run through a graph fixed at one image.
    throw new DenoiseGraphError(`the UNet's batch is fixed at ${Number(batchDim.dimValue)}`);
  }
  const output = graph.output.find((o) => names.outputs.includes(o.name ?? ''))?.name ?? graph.output[0]?.name;
  if (!output) throw new DenoiseGraphError('the UNet has no outputs');

  const unetSample = `${P}unet_sample`;
  renameInput(graph, names.sample, unetSample);
  const b = new NodeList();
  const int64s = (name: string, values: number[], dims = [values.length]) => {
    graph.initializer.push({ name: P + name, dataType: DataType.INT64, dims, int64Data: values });
    return P + name;
  };
  const zero = int64s('zero', [0]);
  const one = int64s('one', [1]);
  const scalarShape = int64s('scalar_shape', [], [0]);
  const ones3 = int64s('ones_3', [1, 1, 1]);

  // r = the states' batch / the latents' batch: 2 with guidance, 1 without.
  const images = b.op('Gather', [b.op('Shape', [names.sample]), zero], { axis: 0 });
  const states = b.op('Gather', [b.op('Shape', [names.encoderHiddenStates]), zero], { axis: 0 });
  const r = b.op('Div', [states, images]);
  const scaled = b.op('Div', [names.sample, DENOISE_INPUTS.sampleDivisor]);
  // [x; x] in diffusers' [uncond, cond] order; cast to the UNet's precision on the device.
  const repeated = b.op('Tile', [scaled, b.op('Concat', [r, ones3], { axis: 0 })]);
  b.op(unetFloat === DataType.FLOAT16 ? 'Cast' : 'Identity', [repeated], unetFloat === DataType.FLOAT16 ? { to: DataType.FLOAT16 } : {}, unetSample);
  const unetNodes = graph.node;

  const out = unetFloat === DataType.FLOAT16 ? b.op('Cast', [output], { to: DataType.FLOAT }) : output;
  const halves = b.op('Reshape', [out, b.op('Concat', [r, b.op('Shape', [names.sample])], { axis: 0 })]);
  const uncond = b.op('Gather', [halves, b.op('Reshape', [zero, scalarShape])], { axis: 0 });
  // The last half: cond with guidance; without it, uncond itself, and the difference below is 0.
  const cond = b.op('Gather', [halves, b.op('Reshape', [b.op('Sub', [r, one]), scalarShape])], { axis: 0 });
  const guided = b.op('Add', [uncond, b.op('Mul', [b.op('Sub', [cond, uncond]), DENOISE_INPUTS.guidanceScale])], {}, DENOISE_OUTPUTS.noisePred);
  b.op(
    'Add',
    [b.op('Mul', [names.sample, DENOISE_INPUTS.sampleCoeff]), b.op('Mul', [guided, DENOISE_INPUTS.noiseCoeff])],
    {},
    DENOISE_OUTPUTS.prevSample,
  );

  // Ours that feed the UNet first, then the UNet's, then ours that read its output: a topological order.
  const feedCount = b.nodes.findIndex((n) => n.output?.[0] === unetSample) + 1;
  graph.node = [...b.nodes.slice(0, feedCount), ...unetNodes, ...b.nodes.slice(feedCount)];
  const latents = (name: string) => valueInfo(name, DataType.FLOAT, ['batch', 4, 'height', 'width']);
  const scalar = (name: string) => valueInfo(name, DataType.FLOAT, [1]);
  graph.input = [
    latents(names.sample),
    ...graph.input.filter((i) => i.name !== names.sample),
    ...Object.values(DENOISE_INPUTS).map(scalar),
  ];
  graph.output = [latents(DENOISE_OUTPUTS.noisePred), latents(DENOISE_OUTPUTS.prevSample)];
  // The UNet's own shape annotations stay valid; one for its old output name does no harm either.
  return onnx.ModelProto.encode(model).finish();
}

/** Points every use of graph input `from` (subgraphs included) at `to`, and drops it from the inputs. */
function renameInput(graph: onnxProto.onnx.IGraphProto, from: string, to: string): void {
  graph.input = (graph.input ?? []).filter((i) => i.name !== from);
  const visit = (g: onnxProto.onnx.IGraphProto) => {
    for (const node of g.node ?? []) {
      node.input = (node.input ?? []).map((name) => (name === from ? to : name));
      for (const attribute of node.attribute ?? []) {
        if (attribute.g) visit(attribute.g);
        for (const sub of attribute.graphs ?? []) visit(sub);
      }
    }
  };
  visit(graph);
}

class NodeList {
  readonly nodes: onnxProto.onnx.INodeProto[] = [];

  op(type: string, inputs: string[], attributes: Record<string, number> = {}, output?: string): string {
    const name = `${P}${type}_${this.nodes.length}`;
    const result = output ?? name;
    this.nodes.push({
      name,
      opType: type,
      input: inputs,
      output: [result],
      attribute: Object.entries(attributes).map(([key, value]) => ({ name: key, type: AttributeType.INT, i: value })),
    });
    return result;
  }
}

function valueInfo(name: string, elemType: number, dims: (number | string)[]): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  };
}
