// The built package entry (`npm run build:client`, dist/client) as Node 20 users get it: the
// machine's Node 20 imports `itemgen/client` through package.json's exports and talks to a real
// gateway (submit, wait on the event stream, download, verifyWebhook).
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startEmbeddedProduct, type TestProduct } from '../helpers/product.ts';

const root = path.resolve(import.meta.dirname, '..', '..');
const NODE20 = '/usr/bin/node';

const SCRIPT = `
import { createItemgenClient, verifyWebhook, ItemgenError } from 'itemgen/client';
const client = createItemgenClient({ baseUrl: process.env.ITEMGEN_URL });
const submitted = await client.submit({ prompt: 'a glowing sword', num_inference_steps: 2, width: 256, height: 256, seed: 3 });
let events = 0;
const done = await client.wait(submitted.id, { onProgress: () => events++, timeoutMs: 60000 });
const png = await client.download(done, 0);
let refused = '';
try { verifyWebhook('whsec_' + btoa('0123456789abcdef0123456789abcdef'), {}, '{}'); } catch (e) { refused = e instanceof ItemgenError ? e.code : String(e); }
console.log(JSON.stringify({ node: process.version, status: done.status, events, signature: [...png.slice(1, 4)].map((c) => String.fromCharCode(c)).join(''), refused }));
`;

const it = suite<{ p: TestProduct; node20: boolean }>('itemgen/client built, on Node 20');
it.before(async (ctx) => {
  ctx.node20 = fs.existsSync(NODE20) && /^v20\./.test(execFileSync(NODE20, ['--version'], { encoding: 'utf8' }));
  ctx.p = await startEmbeddedProduct();
});
it.after(async ({ p }) => p.stop());

it('npm run build:client emits the entry package.json exports name, with declarations', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  const entry = pkg.exports['./client'];
  execFileSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.client.json'], { cwd: root, stdio: 'pipe' });
  assert.ok(fs.existsSync(path.join(root, entry.import)), entry.import);
  assert.ok(fs.existsSync(path.join(root, entry.types)), entry.types);
  assert.not.match(fs.readFileSync(path.join(root, entry.import), 'utf8'), /\.ts['"]/, 'imports rewritten to .js');
});

it('Node 20 imports itemgen/client and generates an image with it', async ({ p, node20 }) => {
  if (!node20) {
    console.warn(`  (skipped: no Node 20 at ${NODE20})`);
    return;
  }
  // Inside the package, so `itemgen/client` resolves through its own exports (a self-reference).
  fs.mkdirSync(path.join(root, '.scratch'), { recursive: true });
  const dir = fs.mkdtempSync(path.join(root, '.scratch', 'node20-'));
  try {
    fs.writeFileSync(path.join(dir, 'use.mjs'), SCRIPT);
    // Asynchronously: the gateway answering it runs in this process.
    const r = await promisify(execFile)(NODE20, [path.join(dir, 'use.mjs')], { cwd: dir, encoding: 'utf8', env: { ...process.env, ITEMGEN_URL: p.url }, timeout: 90_000 });
    const out = JSON.parse(r.stdout.trim());
    assert.match(out.node, /^v20\./);
    assert.is(out.status, 'completed');
    assert.ok(out.events >= 1);
    assert.is(out.signature, 'PNG');
    assert.is(out.refused, 'webhook_invalid');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

it.run();
