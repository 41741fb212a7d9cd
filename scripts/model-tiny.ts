// `npm run model:tiny -- <dir> [--seed N] [--fp16] [--size tiny|sd15] [--width W]`: writes a
// generated random-weight model folder — the tiny Stable-Diffusion-shaped one (for tests and trying
// the service without real weights), or with `--size sd15` one of Stable Diffusion 1.5's
// architecture and size (`--width` scales its channels, 1 = full size, 4.1 GB in fp32) — and lists
// what it wrote.
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { sd15ParameterCounts, writeSd15Model } from '../src/runner/pipeline/sd15-model.ts';
import { writeTinyModel } from '../src/runner/pipeline/tiny-model.ts';

const usage = 'usage: npm run model:tiny -- <dir> [--seed N] [--fp16] [--size tiny|sd15] [--width W (sd15 only, in (0, 1])]';
let args;
try {
  args = parseArgs({
    allowPositionals: true,
    options: { seed: { type: 'string' }, fp16: { type: 'boolean' }, size: { type: 'string' }, width: { type: 'string' } },
  });
} catch (err) {
  console.error(`${(err as Error).message}\n${usage}`);
  process.exit(2);
}
const [dir, ...extra] = args.positionals;
const seed = Number(args.values.seed ?? 0);
const size = args.values.size ?? 'tiny';
const width = Number(args.values.width ?? 1);
const valid =
  dir !== undefined &&
  extra.length === 0 &&
  Number.isSafeInteger(seed) &&
  (size === 'tiny' || size === 'sd15') &&
  (size === 'sd15' ? width > 0 && width <= 1 : args.values.width === undefined);
if (!valid) {
  console.error(usage);
  process.exit(2);
}

const fp16 = args.values.fp16 ?? false;
const started = performance.now();
const files = size === 'sd15' ? await writeSd15Model(dir, { seed, fp16, width }) : await writeTinyModel(dir, { seed, fp16 });
const elapsed = performance.now() - started;
let total = 0;
for (const file of files) {
  const { size: bytes } = await stat(join(dir, file));
  total += bytes;
  console.log(`${String(bytes).padStart(11)}  ${file}`);
}
const what = size === 'sd15' ? `sd15 width ${width}, ` : '';
console.log(`${String(total).padStart(11)}  bytes in ${dir} (${what}seed ${seed}${fp16 ? ', fp16' : ''}, ${elapsed.toFixed(0)} ms)`);
if (size === 'sd15') {
  const counts = sd15ParameterCounts(width);
  console.log(`parameters: text encoder ${counts.textEncoder}, UNet ${counts.unet}, VAE decoder ${counts.vaeDecoder}`);
}
