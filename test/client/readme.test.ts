// The README's SDK example, run as a reader would (importing `itemgen/client`, the built entry)
// against the embedded product: it must keep working as the SDK changes.
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodePng } from '../../src/runner/pipeline/png.ts';
import { startEmbeddedProduct } from '../helpers/product.ts';

const root = path.resolve(import.meta.dirname, '..', '..');

/** The first ```ts block after `marker` in the README. */
function readmeBlock(marker: string): string {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  const at = readme.indexOf(marker);
  assert.ok(at >= 0, `README has ${marker}`);
  const m = /```ts\n([\s\S]*?)```/.exec(readme.slice(at));
  assert.ok(m, `a ts block after ${marker}`);
  return m[1]!;
}

test('the README\'s SDK example writes the two PNGs and prints their seeds', async () => {
  const code = readmeBlock('**SDK**');
  assert.match(code, /from 'itemgen\/client'/);
  execFileSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.client.json'], { cwd: root, stdio: 'pipe' });
  const p = await startEmbeddedProduct();
  fs.mkdirSync(path.join(root, '.scratch'), { recursive: true });
  const dir = fs.mkdtempSync(path.join(root, '.scratch', 'readme-'));
  try {
    // Inside the package, so `itemgen/client` resolves through its exports; the example's
    // number of steps is kept, the tiny model makes them quick.
    fs.writeFileSync(path.join(dir, 'example.ts'), code.replace("'http://127.0.0.1:8080'", JSON.stringify(p.url)));
    const r = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'example.ts'], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
    const lines = r.stdout.trim().split('\n');
    assert.is(lines.length, 2, r.stdout);
    for (const [n, line] of lines.entries()) {
      const m = /^(items\/[0-9a-f-]{36}-(\d)\.png) seed (\d+)$/.exec(line);
      assert.ok(m, line);
      assert.equal([Number(m[2]), Number(m[3])], [n, 7 + n]);
      assert.is(decodePng(fs.readFileSync(path.join(dir, m[1]!))).width, 512);
    }
    assert.match(r.stderr, /completed 30\/30/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    await p.stop();
  }
});

test.run();
