// k8s/dist/ is committed so that reviews show manifest diffs; this is the check that it is what the
// sources synthesize today (CI fails here when someone changed k8s/ or the settings without
// running the synth).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { synthK8s } from '../../k8s/main.ts';
import { synth } from '../helpers/manifests.ts';

const committed = path.join(import.meta.dirname, '..', '..', 'k8s', 'dist');
const FIX = 'k8s/dist is stale: run `npm run synth` and commit k8s/dist';

function files(root: string): string[] {
  if (!fs.existsSync(root)) return [];
  return (fs.readdirSync(root, { recursive: true }) as string[])
    .filter((f) => fs.statSync(path.join(root, f)).isFile())
    .map((f) => f.split(path.sep).join('/'))
    .sort();
}

test('synthK8s reports the files it wrote, manifests and a rules file per environment', () => {
  const { dir, files: written } = synth();
  assert.equal(written.map((f) => path.relative(dir, f).split(path.sep).join('/')), [
    'dev/itemgen.yaml',
    'prod/itemgen.yaml',
    'prometheus/dev.rules.yaml',
    'prometheus/prod.rules.yaml',
  ]);
});

test('the committed k8s/dist is byte for byte what the sources synthesize', () => {
  const fresh = synth().dir;
  assert.equal(files(committed), files(fresh), `${FIX} (files added or removed)`);
  for (const file of files(fresh)) {
    const same = fs.readFileSync(path.join(committed, file)).equals(fs.readFileSync(path.join(fresh, file)));
    assert.ok(same, `${FIX} (${file} differs)`);
  }
});

test('a synth into a folder with stale files leaves only what it writes', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'itemgen-k8s-stale-'));
  try {
    fs.mkdirSync(path.join(dir, 'dev'));
    fs.writeFileSync(path.join(dir, 'dev', 'renamed-long-ago.yaml'), 'kind: Leftover\n');
    fs.mkdirSync(path.join(dir, 'prometheus'));
    fs.writeFileSync(path.join(dir, 'prometheus', 'staging.rules.yaml'), 'groups: []\n');
    synthK8s(dir);
    assert.equal(files(dir), ['dev/itemgen.yaml', 'prod/itemgen.yaml', 'prometheus/dev.rules.yaml', 'prometheus/prod.rules.yaml']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
