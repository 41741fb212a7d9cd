// What `itemgen generate` draws on stderr: a bar with step/total and ETA on a terminal, queue
// position while pending, plain lines elsewhere.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Generation } from '../../src/client/index.ts';
import { progressReporter } from '../../src/cli/progress.ts';

const gen = (status: Generation['status'], step: number, extra: Partial<Generation> = {}) =>
  ({ id: '0123abcd-0000-4000-8000-000000000000', status, progress: { step, total: 10 }, ...extra }) as Generation;

function capture(isTTY: boolean) {
  let text = '';
  let t = 0;
  const out = { isTTY, write: (s: string) => void (text += s) };
  return { out, text: () => text, clock: { now: () => t, advance: (ms: number) => (t += ms) } };
}

test('on a terminal: queue position, then a redrawn bar with step/total and an ETA from the pace so far', () => {
  const c = capture(true);
  const bar = progressReporter(c.out, c.clock.now);
  bar.update(gen('pending', 0, { queue_position: 2 }));
  assert.match(c.text(), /0123abcd queued, position 3$/);
  bar.update(gen('processing', 2));
  c.clock.advance(3000);
  bar.update(gen('processing', 5));
  // 3 steps in 3 s: 5 to go, 5 s.
  assert.ok(c.text().endsWith('\r\x1b[2K0123abcd [############............] step 5/10 ETA 5s'), JSON.stringify(c.text()));
  bar.update(gen('completed', 10));
  bar.done();
  assert.ok(c.text().endsWith('0123abcd completed\n'));
});

test('not a terminal: plain lines, one per status change and at most one progress line per 2 s', () => {
  const c = capture(false);
  const bar = progressReporter(c.out, c.clock.now);
  bar.update(gen('pending', 0));
  bar.update(gen('processing', 1));
  bar.update(gen('processing', 2));
  c.clock.advance(2500);
  bar.update(gen('processing', 7));
  bar.update(gen('completed', 10));
  bar.done();
  assert.equal(c.text().split('\n'), ['0123abcd queued', '0123abcd step 1/10', '0123abcd step 7/10 ETA 1s', '0123abcd completed', '']);
});

test.run();
