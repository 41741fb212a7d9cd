// `npm run model:tiny -- <dir> [--seed N] [--fp16]`: writes the tiny random Stable-Diffusion-shaped
// model folder (for tests and trying the service without real weights) and lists what it wrote.
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { writeTinyModel } from '../src/runner/pipeline/tiny-model.ts';

const usage = 'usage: npm run model:tiny -- <dir> [--seed N] [--fp16]';
let args;
try {
  args = parseArgs({ allowPositionals: true, options: { seed: { type: 'string' }, fp16: { type: 'boolean' } } });
} catch (err) {
  console.error(`${(err as Error).message}\n${usage}`);
  process.exit(2);
}
const [dir, ...extra] = args.positionals;
const seed = Number(args.values.seed ?? 0);
if (dir === undefined || extra.length > 0 || !Number.isSafeInteger(seed)) {
  console.error(usage);
  process.exit(2);
}

const started = performance.now();
const files = await writeTinyModel(dir, { seed, fp16: args.values.fp16 ?? false });
const elapsed = performance.now() - started;
let total = 0;
for (const file of files) {
  const { size } = await stat(join(dir, file));
  total += size;
  console.log(`${String(size).padStart(9)}  ${file}`);
}
console.log(`${String(total).padStart(9)}  bytes in ${dir} (seed ${seed}${args.values.fp16 ? ', fp16' : ''}, ${elapsed.toFixed(0)} ms)`);
