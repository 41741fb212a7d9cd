// One start of a runner on a model folder, for bench:sd15 (which runs it in a process of its own
// each time, so that its load, memory and first generation are a start's): loads the folder with
// the real pipeline on the CPU, generates one image and prints what it measured as one JSON line.
//   node --import tsx scripts/bench/sd15-run.ts <dir> <size> <steps>
import type ort from 'onnxruntime-node';
import { loadModel } from '../../src/runner/pipeline/model.ts';
import { halfBits } from '../../src/runner/pipeline/tensors.ts';
import { txt2img } from '../../src/runner/pipeline/txt2img.ts';
import { ddimParams } from './params.ts';

const [dir, size, steps] = [process.argv[2]!, Number(process.argv[3]), Number(process.argv[4])];
const GiB = 2 ** 30;

let hashMs = NaN;
let hashCached = false;
const log = {
  debug() {},
  info(msg: string, fields?: Record<string, unknown>) {
    if (msg !== 'model hashed') return;
    hashMs = fields?.ms as number;
    hashCached = fields?.cached as boolean;
  },
  warn(msg: string, fields?: Record<string, unknown>) {
    console.error(msg, fields);
  },
  error(msg: string, fields?: Record<string, unknown>) {
    console.error(msg, fields);
  },
};

const loadStart = performance.now();
const model = await loadModel(dir, { executionProvider: 'cpu', log });
const loadMs = performance.now() - loadStart;
const rssAfterLoad = process.memoryUsage().rss / GiB;

/** Whether every value of a float output is finite (float16 by its bits: exponent all ones is inf or NaN). */
function finite(tensor: ort.Tensor): boolean {
  if (tensor.type === 'float16') return halfBits(tensor.data).every((h) => (h & 0x7c00) !== 0x7c00);
  if (tensor.type === 'float32') return (tensor.data as Float32Array).every(Number.isFinite);
  return true;
}

// Every onnxruntime run's time, whichever stage makes it: what the pipeline does outside these is its
// own. Outputs are checked for finiteness after the clock stops.
let insideMs = 0;
let allFinite = true;
for (const session of [model.textEncoder.session, model.unet.session, model.vaeDecoder.session]) {
  const run = session.run.bind(session) as (feeds: ort.InferenceSession.FeedsType) => Promise<ort.InferenceSession.ReturnType>;
  Object.defineProperty(session, 'run', {
    value: async (feeds: ort.InferenceSession.FeedsType) => {
      const started = performance.now();
      const outputs = await run(feeds);
      insideMs += performance.now() - started;
      allFinite &&= Object.values(outputs).every(finite);
      return outputs;
    },
  });
}

const params = ddimParams('a glowing sword', size, steps);
const stepEnds: number[] = [];
const started = performance.now();
const result = await txt2img(model, params, { onStep: () => stepEnds.push(performance.now()) });
const totalMs = performance.now() - started;
const { timingsMs } = result;
console.log(
  JSON.stringify({
    loadMs,
    hashMs,
    hashCached,
    rssAfterLoadGiB: rssAfterLoad,
    peakRssGiB: (process.resourceUsage().maxRSS * 1024) / GiB,
    totalMs,
    insideMs,
    stepMs: timingsMs.denoise / steps,
    unetStepMs: timingsMs.unet / steps,
    textEncoderMs: timingsMs.textEncoder,
    decodeMs: timingsMs.decode,
    pngMs: timingsMs.png,
    steps: stepEnds.length,
    finite: allFinite,
  }),
);
