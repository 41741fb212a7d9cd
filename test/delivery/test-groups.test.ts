// scripts/test-groups.sh, the runner behind `npm test`, with a fake uvu: one process per folder,
// counts summed into the closing line CI reads, a crash counted as a failure, and only V8's known
// WebAssembly crash (nodejs/node#64500) given one more run.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const SCRIPT = path.resolve('scripts/test-groups.sh');

/**
 * A test tree with files at its top and in two folders, and a fake uvu that reports two passing
 * tests per run, except that `crash` names a folder whose first run dies with that output.
 */
function run(crash?: { folder: string; output: string; times: number }, pattern: string[] = []) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'itemgen-groups-'));
  try {
    const tests = path.join(root, 'test');
    for (const f of ['top.test.ts', 'a/one.test.ts', 'b/two.test.ts', 'helpers/no-tests.ts']) {
      fs.mkdirSync(path.dirname(path.join(tests, f)), { recursive: true });
      fs.writeFileSync(path.join(tests, f), '');
    }
    const fake = path.join(root, 'uvu.sh');
    fs.writeFileSync(
      fake,
      `#!/usr/bin/env bash
echo "ran $2" >> ${JSON.stringify(path.join(root, 'runs'))}
if [ -n "$CRASH_FOLDER" ] && [[ "$2" == *"$CRASH_FOLDER/"* ]]; then
  n=$(cat ${JSON.stringify(path.join(root, 'crashes'))} 2>/dev/null || echo 0)
  if [ "$n" -lt "$CRASH_TIMES" ]; then echo $((n + 1)) > ${JSON.stringify(path.join(root, 'crashes'))}; printf '%s\\n' "$CRASH_OUTPUT"; exit 133; fi
fi
printf '  Total:     2\\n  Passed:    2\\n  Skipped:   1\\n'
`,
      { mode: 0o755 },
    );
    const res = spawnSync('bash', [SCRIPT, tests, '60', fake, '--', ...pattern], {
      encoding: 'utf8',
      env: { ...process.env, CRASH_FOLDER: crash?.folder ?? '', CRASH_OUTPUT: crash?.output ?? '', CRASH_TIMES: String(crash?.times ?? 0) },
    });
    const runs = fs.readFileSync(path.join(root, 'runs'), 'utf8').trim().split('\n');
    return { code: res.status, last: res.stdout.trim().split('\n').at(-1), stdout: res.stdout, runs };
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

const V8_CRASH = '#\n# Fatal error in , line 0\n# Check failed: jit_page_->allocations_.erase(addr) == 1.\n#';

test('one process per folder with tests and one for the top, counts summed', () => {
  const r = run();
  assert.equal(r.runs, ['ran ^[^/]+\\.test\\.ts$', 'ran ^a/.*\\.test\\.ts$', 'ran ^b/.*\\.test\\.ts$']);
  assert.is(r.last, '6 passed, 0 failed, 3 skipped');
  assert.is(r.code, 0);
});

test("V8's WebAssembly crash: that folder runs once more, and the run says so", () => {
  const r = run({ folder: 'a', output: V8_CRASH, times: 1 });
  assert.is(r.runs.filter((x) => x.includes('^a/')).length, 2);
  assert.match(r.stdout, /V8 crashed freeing WebAssembly code \(nodejs\/node#64500.*\): running \^a\/\.\*\\\.test\\\.ts\$ once more/);
  assert.is(r.last, '6 passed, 0 failed, 3 skipped');
  assert.is(r.code, 0);
});

test('only once: crashing again is a failure', () => {
  const r = run({ folder: 'a', output: V8_CRASH, times: 2 });
  assert.is(r.last, '4 passed, 1 failed, 2 skipped');
  assert.is(r.code, 133);
});

test('any other crash is a failure at once, and the other folders still run', () => {
  const r = run({ folder: 'a', output: 'Segmentation fault', times: 1 });
  assert.is(r.runs.filter((x) => x.includes('^a/')).length, 1);
  assert.is(r.last, '4 passed, 1 failed, 2 skipped');
  assert.is(r.code, 133);
});

test('a pattern of its own: one process, as asked', () => {
  const r = run(undefined, ['web/']);
  assert.equal(r.runs, ['ran web/']);
  assert.is(r.last, '2 passed, 0 failed, 1 skipped');
});

test.run();
