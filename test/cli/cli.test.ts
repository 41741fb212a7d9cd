// `itemgen` tried as a new user: the command as a subprocess (bin/itemgen.js, as npm installs it)
// against the embedded product, with ITEMGEN_URL set and nothing else; and failed and canceled
// generations against a gateway whose runner is this test (the internal API), so they stay pending.
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createItemgenClient } from '../../src/client/index.ts';
import { decodePng } from '../../src/runner/pipeline/png.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { startEmbeddedProduct, type TestProduct } from '../helpers/product.ts';

const BIN = path.resolve(import.meta.dirname, '..', '..', 'bin', 'itemgen.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI; `onStderr` sees stderr as it arrives (to act once the CLI said something). */
function itemgen(args: string[], env: Record<string, string>, onStderr?: (text: string) => void): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { PATH: process.env.PATH ?? '', HOME: os.tmpdir(), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      onStderr?.(stderr);
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const it = suite<{ p: TestProduct; env: Record<string, string>; dir: string }>('itemgen against the embedded product');
it.before(async (ctx) => {
  ctx.p = await startEmbeddedProduct();
  ctx.env = { ITEMGEN_URL: ctx.p.url };
  ctx.dir = await fs.mkdtemp(path.join(os.tmpdir(), 'itemgen-cli-'));
});
it.after(async ({ p, dir }) => {
  await p.stop();
  await fs.rm(dir, { recursive: true, force: true });
});

it('--help says how to use it; no command is a usage error (2)', async ({ env }) => {
  const help = await itemgen(['--help'], env);
  assert.is(help.code, 0);
  assert.match(help.stdout, /itemgen generate "<prompt>"/);
  assert.match(help.stdout, /ITEMGEN_URL/);
  const none = await itemgen([], env);
  assert.is(none.code, 2);
  const unknown = await itemgen(['generat', 'x'], env);
  assert.is(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command "generat"/);
});

it('generate writes two PNGs and prints their paths and seeds; status, list and rerun --image 1 work', async ({ env, dir }) => {
  const out = path.join(dir, 'items');
  const r = await itemgen(['generate', 'a glowing sword', '--steps', '3', '--seed', '7', '-n', '2', '--width', '256', '--height', '256', '--out', out], env);
  assert.is(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.is(lines.length, 2, r.stdout);
  const files = lines.map((l) => /^(\S+)\s+seed (\d+)$/.exec(l)!);
  assert.ok(files.every(Boolean), r.stdout);
  assert.equal(files.map((m) => Number(m[2])), [7, 8]);
  for (const [n, m] of files.entries()) {
    assert.match(m[1]!, new RegExp(`^${out}/[0-9a-f-]{36}-${n}\\.png$`));
    assert.is(decodePng(await fs.readFile(m[1]!)).width, 256);
  }
  // stderr is not a terminal here: plain lines, the id first, then the progress.
  assert.match(r.stderr, /^submitted [0-9a-f-]{36}\n/);
  assert.match(r.stderr, /completed/);
  assert.not.match(r.stderr, /\r|\x1b\[/, 'no redrawing when stderr is not a TTY');
  const id = /^submitted (\S+)/.exec(r.stderr)![1]!;

  const status = await itemgen(['status', id], env);
  assert.is(status.code, 0, status.stderr);
  assert.match(status.stdout, new RegExp(`^${id}  completed`));
  assert.match(status.stdout, /256x256, 3 steps ddim, guidance 7.5, seed 7, 2 image\(s\)/);
  assert.match(status.stdout, /image 1 .* seed 8/);

  const list = await itemgen(['list', '--status', 'completed', '--limit', '5'], env);
  assert.is(list.code, 0, list.stderr);
  assert.match(list.stdout, new RegExp(`^${id}  completed`, 'm'));

  const rerunDir = path.join(dir, 'rerun');
  const rerun = await itemgen(['rerun', id, '--image', '1', '--out', rerunDir], env);
  assert.is(rerun.code, 0, rerun.stderr);
  const [line, ...more] = rerun.stdout.trim().split('\n');
  assert.is(more.length, 0, 'one image');
  assert.match(line!, /-0\.png\s+seed 8$/);
  const rerunPng = await fs.readFile(line!.split(/\s+/)[0]!);
  assert.is(decodePng(rerunPng).width, 256);
  // A runner that reports per-image seeds runs image i with seed + i alone: the rerun is the same image.
  const shown = JSON.parse((await itemgen(['status', id, '--json'], env)).stdout);
  if (shown.images[1].seed !== undefined) assert.ok(rerunPng.equals(await fs.readFile(files[1]![1]!)), 'rerun --image 1 gives the bytes of image 1');
});

it('--json: one JSON document on stdout for each command', async ({ env, dir }) => {
  const gen = await itemgen(['generate', 'a shield', '--steps', '2', '--width', '256', '--height', '256', '--seed', '11', '--out', dir, '--json'], env);
  assert.is(gen.code, 0, gen.stderr);
  const doc = JSON.parse(gen.stdout);
  assert.is(doc.generation.status, 'completed');
  assert.equal(doc.files.map((f: { seed: number; index: number }) => [f.index, f.seed]), [[0, 11]]);
  await fs.access(doc.files[0].path);
  const status = JSON.parse((await itemgen(['status', doc.generation.id, '--json'], env)).stdout);
  assert.is(status.id, doc.generation.id);
  const list = JSON.parse((await itemgen(['list', '--json', '--limit', '1'], env)).stdout);
  assert.is(list.data.length, 1);
  assert.ok('next_cursor' in list);
  const bad = await itemgen(['generate', 'x', '--width', '100', '--json'], env);
  assert.is(bad.code, 2);
  assert.is(JSON.parse(bad.stdout).error.code, 'validation_failed');
});

it('bad input exits 2 with the 422 detail; an unknown id exits 1 with the 404 detail', async ({ env }) => {
  const bad = await itemgen(['generate', 'a sword', '--width', '100'], env);
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /^itemgen: The request body is invalid: width: .*\(422 validation_failed\)$/m);
  const notNumber = await itemgen(['generate', 'a sword', '--steps', 'many'], env);
  assert.is(notNumber.code, 2);
  assert.match(notNumber.stderr, /--steps must be a number/);
  const unknown = await itemgen(['status', '00000000-0000-4000-8000-000000000000'], env);
  assert.is(unknown.code, 1);
  assert.match(unknown.stderr, /No generation with this id\. \(404 not_found\)/);
});

it.run();

const failing = suite<{ t: TestGateway }>('itemgen against a gateway with API keys whose runner is this test');
failing.before(async (ctx) => {
  ctx.t = await startTestGateway({ store: 'pglite', broker: 'memory', keys: [{ name: 'cli' }] });
});
failing.after(async ({ t }) => t.stop());

failing('the key comes from ITEMGEN_API_KEY, --api-key overrides it; without one the 401 detail, exit 1', async ({ t }) => {
  const key = t.keys.cli!;
  const none = await itemgen(['list'], { ITEMGEN_URL: t.url });
  assert.is(none.code, 1);
  assert.match(none.stderr, /\(401 /);
  const fromEnv = await itemgen(['list', '--json'], { ITEMGEN_URL: t.url, ITEMGEN_API_KEY: key });
  assert.is(fromEnv.code, 0, fromEnv.stderr);
  assert.ok(Array.isArray(JSON.parse(fromEnv.stdout).data));
  const overridden = await itemgen(['list', '--api-key', key, '--url', t.url], { ITEMGEN_URL: 'http://127.0.0.1:9', ITEMGEN_API_KEY: 'ik_wrong' });
  assert.is(overridden.code, 0, overridden.stderr);
});

failing('generate exits 1 with the generation\'s error message', async ({ t }) => {
  let failed: Promise<void> | undefined;
  const r = await itemgen(['generate', 'a cursed sword', '--steps', '2'], { ITEMGEN_URL: t.url, ITEMGEN_API_KEY: t.keys.cli! }, (stderr) => {
    const id = /submitted (\S+)\n/.exec(stderr)?.[1];
    if (!id || failed) return;
    // This test is the runner: it claims the generation and reports that it failed.
    failed = (async () => {
      const claim = await t.runner(`/generations/${id}/claim`, { runner_id: 'cli-test' });
      assert.is(claim.status, 200, await claim.clone().text());
      const { attempt } = (await claim.json()) as { attempt: number };
      const fail = await t.runner(`/generations/${id}/fail`, { attempt, code: 'out_of_memory', message: 'The runner ran out of memory.' });
      assert.is(fail.status, 200, await fail.clone().text());
    })();
  });
  await failed;
  assert.is(r.code, 1);
  assert.match(r.stderr, /itemgen: generation \S+ failed: The runner ran out of memory\.\n$/);
  assert.is(r.stdout, '');
});

failing('cancel ends a pending generation; a second cancel exits 1 with the 409 detail', async ({ t }) => {
  const env = { ITEMGEN_URL: t.url, ITEMGEN_API_KEY: t.keys.cli! };
  const { id } = await createItemgenClient({ baseUrl: t.url, apiKey: t.keys.cli! }).submit({ prompt: 'never claimed', num_inference_steps: 2 });
  const r = await itemgen(['cancel', id], env);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, `${id} canceled\n`);
  const again = await itemgen(['cancel', id, '--json'], env);
  assert.is(again.code, 1);
  assert.match(again.stderr, /The generation is already canceled\. \(409 already_finished\)/);
  assert.is(JSON.parse(again.stdout).error.status, 409);
});

failing.run();
