// The model hash and its digest cache: the same hash as hashing every file, weights not read again
// while every file keeps its size and mtime, read again (and a new hash) when one changes.
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { HASH_CACHE_FILE, hashModelFiles } from '../../../src/runner/pipeline/model-hash.ts';
import { loadModel } from '../../../src/runner/pipeline/model.ts';
import { writeTinyModel } from '../../../src/runner/pipeline/tiny-model.ts';

const it = suite<{ root: string }>('model hash cache');
let folders = 0;

it.before(async (ctx) => {
  ctx.root = await fs.mkdtemp(path.join(os.tmpdir(), 'itemgen-model-hash-'));
});
it.after(({ root }) => fs.rm(root, { recursive: true, force: true }));

const tinyFolder = async (root: string) => {
  const dir = path.join(root, `model-${folders++}`);
  await writeTinyModel(dir, { seed: 1 });
  return dir;
};

const exists = (file: string) => fs.stat(file).then(
  () => true,
  () => false,
);

/** A reader that counts the files it opens. */
const countingReader = () => {
  const opened: string[] = [];
  return {
    opened,
    read: async function* (file: string) {
      opened.push(file);
      yield await fs.readFile(file);
    },
  };
};

/** The hash as defined (every ONNX file and its weights, in order, each after its name), computed here without the module. */
async function expectedHash(dir: string): Promise<string> {
  const hash = createHash('sha256');
  for (const file of ['text_encoder/model.onnx', 'unet/model.onnx', 'unet/weights.pb', 'vae_decoder/model.onnx']) {
    hash.update(`${file}\0`);
    hash.update(await fs.readFile(path.join(dir, file)));
  }
  return hash.digest('hex');
}

it('is sha256 over the ONNX files and weights, the same from the cache; a second start reads no file', async ({ root }) => {
  const dir = await tinyFolder(root);
  const first = countingReader();
  const cold = await hashModelFiles(dir, { read: first.read });
  assert.is(cold.hash, await expectedHash(dir));
  assert.is(cold.cached, false);
  assert.is(cold.notStored, undefined);
  assert.is(first.opened.length, 4);

  const again = countingReader();
  const warm = await hashModelFiles(dir, { read: again.read });
  assert.equal(warm, { hash: cold.hash, cached: true });
  assert.equal(again.opened, [], 'no weights read while nothing changed');
});

it('a changed file of the same size changes the hash and is read again', async ({ root }) => {
  const dir = await tinyFolder(root);
  const before = await hashModelFiles(dir);
  const weights = path.join(dir, 'unet/weights.pb');
  const bytes = await fs.readFile(weights);
  bytes[0] = bytes[0]! ^ 0xff;
  await fs.writeFile(weights, bytes);
  // Same size; a later mtime is what tells the cache (set explicitly: a write within the same clock tick could keep it).
  const { mtime } = await fs.stat(weights);
  await fs.utimes(weights, mtime, new Date(mtime.getTime() + 1000));

  const reader = countingReader();
  const after = await hashModelFiles(dir, { read: reader.read });
  assert.is(after.cached, false);
  assert.is.not(after.hash, before.hash);
  assert.is(after.hash, await expectedHash(dir));
  assert.is(reader.opened.length, 4);
  assert.equal(await hashModelFiles(dir), { hash: after.hash, cached: true }, 'the new digest is cached');
});

it('a touched file is read again and keeps its hash; an added file changes it', async ({ root }) => {
  const dir = await tinyFolder(root);
  const before = await hashModelFiles(dir);
  const model = path.join(dir, 'vae_decoder/model.onnx');
  const { mtime } = await fs.stat(model);
  await fs.utimes(model, mtime, new Date(mtime.getTime() + 1000));
  const touched = await hashModelFiles(dir);
  assert.equal(touched, { hash: before.hash, cached: false });

  await fs.writeFile(path.join(dir, 'vae_decoder/extra.bin'), 'x');
  const added = await hashModelFiles(dir);
  assert.is(added.cached, false);
  assert.is.not(added.hash, before.hash);
});

it('a damaged or foreign cache file is ignored and replaced; a cache that cannot be written says why', async ({ root }) => {
  const dir = await tinyFolder(root);
  const cacheFile = path.join(dir, HASH_CACHE_FILE);
  const expected = await expectedHash(dir);
  for (const junk of ['{', '[]', JSON.stringify({ version: 1, files: [], sha256: 'x' })]) {
    await fs.writeFile(cacheFile, junk);
    assert.equal(await hashModelFiles(dir), { hash: expected, cached: false }, junk);
    assert.equal(await hashModelFiles(dir), { hash: expected, cached: true }, `${junk} replaced`);
  }
  const unwritable = await hashModelFiles(dir, { cacheFile: path.join(dir, 'no-such-folder', 'cache.json') });
  assert.is(unwritable.hash, expected);
  assert.match(unwritable.notStored ?? '', /ENOENT/);
});

it('without a cache file every start reads every file', async ({ root }) => {
  const dir = await tinyFolder(root);
  for (let i = 0; i < 2; i++) {
    const reader = countingReader();
    const result = await hashModelFiles(dir, { cacheFile: null, read: reader.read });
    assert.is(result.cached, false);
    assert.is(reader.opened.length, 4);
  }
  assert.not.ok(await exists(path.join(dir, HASH_CACHE_FILE)));
});

it("loadModel's hash is the model hash, and its log says whether it came from the cache", async ({ root }) => {
  const dir = await tinyFolder(root);
  const cacheFile = path.join(root, `${path.basename(dir)}.hash.json`);
  const logged: Record<string, unknown>[] = [];
  const log = { debug() {}, info: (msg: string, fields?: Record<string, unknown>) => msg === 'model hashed' && logged.push(fields ?? {}), warn() {}, error() {} };
  const model = await loadModel(dir, { executionProvider: 'cpu', hashCacheFile: cacheFile, log });
  assert.is(model.hash, await expectedHash(dir));
  assert.is(logged.length, 1);
  assert.is(logged[0]!.cached, false);
  assert.type(logged[0]!.ms, 'number');
  assert.equal(await hashModelFiles(dir, { cacheFile }), { hash: model.hash, cached: true }, 'kept where it was told');
  assert.not.ok(await exists(path.join(dir, HASH_CACHE_FILE)));
});

it.run();
