// The commands of `itemgen`, as one function of argv and the environment returning the exit
// code: 0 done; 1 the generation failed or was canceled, or the API refused; 2 bad input (a
// usage error, or a 400/422 of the API, whose detail is printed).
import fs from 'node:fs/promises';
import path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { createItemgenClient, imageSeed, ItemgenError, type Generation, type ItemgenClient, type SubmitBody } from '../client/index.ts';
import { progressReporter, type ProgressOutput } from './progress.ts';

export const DEFAULT_URL = 'http://127.0.0.1:8080';

export interface CliIo {
  env: Record<string, string | undefined>;
  stdout: { write(text: string): unknown };
  stderr: ProgressOutput;
}

const HELP = `itemgen: generate game-item images with an itemgen gateway

Usage:
  itemgen generate "<prompt>" [options]   submit, show progress, write the PNGs
  itemgen status <id>                     a generation's status, parameters and images
  itemgen list [--status S] [--limit N]   your generations, newest first
  itemgen cancel <id>                     cancel a pending or processing generation
  itemgen rerun <id> [--image N] [--out DIR]
                                          the same parameters again (with --image N: only image N, same seed)

Generate options:
  -n, --images N        images in the batch (1-4)            --steps N        denoising steps
  --seed N              seed of image 0 (image i uses seed+i) --negative TEXT  negative prompt
  --width N, --height N multiples of 8, 256-1024              --guidance X     guidance scale
  --scheduler NAME      ddim, pndm, euler, euler_a, dpmpp_2m, lcm
  --webhook URL         POSTed the generation when it completes (signed; see README)
  -o, --out DIR         where the PNGs go (default .), named <id>-<index>.png
  --wait-timeout SEC    give up waiting after SEC seconds (the generation goes on)

Everywhere:
  --json                one JSON document on stdout (for scripts)
  --url URL             the gateway (default $ITEMGEN_URL, else ${DEFAULT_URL})
  --api-key KEY         the API key (default $ITEMGEN_API_KEY)
  -h, --help            this text

Exit codes: 0 done, 1 failed, canceled or refused, 2 bad input.
`;

const common = {
  json: { type: 'boolean' },
  url: { type: 'string' },
  'api-key': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

const outputs = {
  out: { type: 'string', short: 'o' },
  'wait-timeout': { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

const OPTIONS = {
  generate: {
    ...common,
    ...outputs,
    images: { type: 'string', short: 'n' },
    steps: { type: 'string' },
    seed: { type: 'string' },
    negative: { type: 'string' },
    width: { type: 'string' },
    height: { type: 'string' },
    scheduler: { type: 'string' },
    guidance: { type: 'string' },
    webhook: { type: 'string' },
  },
  status: common,
  list: { ...common, status: { type: 'string' }, limit: { type: 'string' } },
  cancel: common,
  rerun: { ...common, ...outputs, image: { type: 'string' } },
} as const satisfies Record<string, ParseArgsConfig['options']>;

type Command = keyof typeof OPTIONS;
type Values = Record<string, string | boolean | undefined>;

class UsageError extends Error {}

export async function run(argv: string[], io: CliIo): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    (command === undefined ? io.stderr : io.stdout).write(HELP);
    return command === undefined ? 2 : 0;
  }
  let json = argv.includes('--json');
  try {
    if (!(command in OPTIONS)) throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    const cmd = command as Command;
    const { values, positionals } = parseArgs({ args: rest, options: OPTIONS[cmd], allowPositionals: true, strict: true });
    const v = values as Values;
    json = v.json === true;
    if (v.help) {
      io.stdout.write(HELP);
      return 0;
    }
    const client = createItemgenClient({
      baseUrl: str(v.url) ?? io.env.ITEMGEN_URL ?? DEFAULT_URL,
      apiKey: str(v['api-key']) ?? io.env.ITEMGEN_API_KEY,
    });
    const out = (human: string, doc: unknown) => io.stdout.write(json ? `${JSON.stringify(doc, null, 2)}\n` : human);

    switch (cmd) {
      case 'generate': {
        const prompt = one(positionals, 'a prompt, e.g. itemgen generate "a glowing sword"');
        const body: SubmitBody = { prompt };
        setInt(body, 'num_images', v.images);
        setInt(body, 'num_inference_steps', v.steps);
        setInt(body, 'seed', v.seed);
        setInt(body, 'width', v.width);
        setInt(body, 'height', v.height);
        if (v.guidance !== undefined) body.guidance_scale = number(v.guidance, 'guidance');
        if (v.negative !== undefined) body.negative_prompt = str(v.negative);
        if (v.scheduler !== undefined) body.scheduler = str(v.scheduler) as SubmitBody['scheduler'];
        if (v.webhook !== undefined) body.webhook = str(v.webhook);
        const submitted = await client.submit(body);
        return await finish(client, submitted, v, io, json, out);
      }
      case 'rerun': {
        const id = one(positionals, 'a generation id');
        const image = v.image === undefined ? undefined : integer(v.image, 'image');
        const submitted = await client.rerun(id, image === undefined ? {} : { image });
        return await finish(client, submitted, v, io, json, out);
      }
      case 'status': {
        const g = await client.get(one(positionals, 'a generation id'));
        out(describe(g), g);
        return 0;
      }
      case 'list': {
        if (positionals.length) throw new UsageError(`unexpected ${JSON.stringify(positionals[0])}`);
        const page = await client.list({
          ...(v.status !== undefined ? { status: str(v.status) as Generation['status'] } : {}),
          ...(v.limit !== undefined ? { limit: integer(v.limit, 'limit') } : {}),
        });
        const lines = page.data.map((g) => `${g.id}  ${g.status.padEnd(10)} ${g.created_at}  ${JSON.stringify(g.params.prompt)}\n`);
        out(lines.join('') || 'no generations\n', page);
        return 0;
      }
      case 'cancel': {
        const g = await client.cancel(one(positionals, 'a generation id'));
        out(`${g.id} ${g.status}\n`, g);
        return 0;
      }
    }
  } catch (err) {
    return fail(err, io, json);
  }
}

/** Waits for a submitted generation, writes its images and says where; 1 when it did not complete. */
async function finish(
  client: ItemgenClient,
  submitted: Generation,
  v: Values,
  io: CliIo,
  json: boolean,
  out: (human: string, doc: unknown) => void,
): Promise<number> {
  const dir = str(v.out) ?? '.';
  const timeout = v['wait-timeout'] === undefined ? undefined : number(v['wait-timeout'], 'wait-timeout') * 1000;
  // The whole id, so the user can follow or cancel it from elsewhere.
  io.stderr.write(`submitted ${submitted.id}\n`);
  const bar = progressReporter(io.stderr);
  bar.update(submitted);
  let g: Generation;
  try {
    g = await client.wait(submitted.id, { onProgress: (p) => bar.update(p), ...(timeout !== undefined ? { timeoutMs: timeout } : {}) });
  } finally {
    bar.done();
  }
  if (g.status !== 'completed') {
    const why = g.status === 'failed' ? `generation ${g.id} failed: ${g.error?.message || g.error?.code || 'no reason given'}` : `generation ${g.id} was ${g.status}`;
    if (json) out('', { generation: g, files: [] });
    io.stderr.write(`itemgen: ${why}\n`);
    return 1;
  }
  await fs.mkdir(dir, { recursive: true });
  const files: { path: string; index: number; seed: number }[] = [];
  for (const image of g.images ?? []) {
    const file = path.join(dir, `${g.id}-${image.index}.png`);
    await fs.writeFile(file, await client.download(g, image.index));
    files.push({ path: file, index: image.index, seed: imageSeed(g, image.index) });
  }
  out(files.map((f) => `${f.path}  seed ${f.seed}\n`).join(''), { generation: g, files });
  return 0;
}

function describe(g: Generation): string {
  const p = g.params;
  const lines = [
    `${g.id}  ${g.status}${g.status === 'pending' && g.queue_position != null ? ` (queue position ${g.queue_position + 1})` : ''}`,
    `  progress   ${g.progress.step}/${g.progress.total}`,
    `  prompt     ${JSON.stringify(p.prompt)}${p.negative_prompt ? `  negative ${JSON.stringify(p.negative_prompt)}` : ''}`,
    `  params     ${p.width}x${p.height}, ${p.num_inference_steps} steps ${p.scheduler}, guidance ${p.guidance_scale}, seed ${p.seed}, ${p.num_images} image(s)`,
    `  created    ${g.created_at}${g.finished_at ? `  finished ${g.finished_at}` : ''}`,
  ];
  if (g.error) lines.push(`  error      ${g.error.code}: ${g.error.message}`);
  for (const image of g.images ?? []) lines.push(`  image ${image.index}    ${image.url}  seed ${imageSeed(g, image.index)}`);
  return `${lines.join('\n')}\n`;
}

function fail(err: unknown, io: CliIo, json: boolean): number {
  if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
    io.stderr.write(`itemgen: ${(err as Error).message}\nRun itemgen --help for usage.\n`);
    return 2;
  }
  if (err instanceof ItemgenError) {
    if (json) io.stdout.write(`${JSON.stringify({ error: err.problem }, null, 2)}\n`);
    io.stderr.write(`itemgen: ${err.detail}${err.status ? ` (${err.status} ${err.code})` : ''}\n`);
    return err.status === 400 || err.status === 422 || err.code === 'invalid_image' ? 2 : 1;
  }
  io.stderr.write(`itemgen: ${(err as Error).message ?? String(err)}\n`);
  return 1;
}

const str = (v: string | boolean | undefined): string | undefined => (typeof v === 'string' ? v : undefined);

function one(positionals: string[], what: string): string {
  if (positionals.length === 0) throw new UsageError(`missing ${what}`);
  if (positionals.length > 1) throw new UsageError(`unexpected ${JSON.stringify(positionals[1])} (quote a prompt with spaces)`);
  return positionals[0]!;
}

function number(v: string | boolean | undefined, name: string): number {
  const n = Number(v);
  if (typeof v !== 'string' || v.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${name} must be a number, not ${JSON.stringify(v)}`);
  return n;
}

function integer(v: string | boolean | undefined, name: string): number {
  const n = number(v, name);
  if (!Number.isSafeInteger(n)) throw new UsageError(`--${name} must be an integer, not ${JSON.stringify(v)}`);
  return n;
}

/** An integer flag into the body; the server checks its range and answers 422 with the field. */
function setInt(body: SubmitBody, field: 'num_images' | 'num_inference_steps' | 'seed' | 'width' | 'height', v: string | boolean | undefined) {
  if (v !== undefined) body[field] = integer(v, field === 'num_images' ? 'images' : field === 'num_inference_steps' ? 'steps' : field);
}
