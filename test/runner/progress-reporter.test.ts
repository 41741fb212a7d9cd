// The progress reporter alone, on a fake clock that moves only when a test says and a gateway whose
// every answer the test gives: which steps are sent, when, and what an answer does. Nothing here
// waits on time; `settled()` only lets the reporter's own promise callbacks run.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Clock } from '../../src/core/retry.ts';
import type { ReportResult } from '../../src/runner/gateway-client.ts';
import { createPreviewThrottle } from '../../src/runner/preview-throttle.ts';
import { createProgressReporter, type ProgressReporterOptions } from '../../src/runner/progress-reporter.ts';

/** A clock whose time moves only by `advance`; a sleep ends when the time passes its end, or rejects when aborted. */
function fakeClock() {
  let now = 0;
  const sleepers: { until: number; resolve: () => void }[] = [];
  const clock: Clock = {
    now: () => now,
    random: () => 0.5,
    sleep: (ms, signal) =>
      new Promise<void>((resolve, reject) => {
        const sleeper = { until: now + ms, resolve };
        sleepers.push(sleeper);
        signal?.addEventListener('abort', () => {
          sleepers.splice(sleepers.indexOf(sleeper), 1);
          reject(signal.reason);
        });
      }),
  };
  return {
    clock,
    /** Sleeps still waiting. */
    sleeping: () => sleepers.length,
    async advance(ms: number) {
      now += ms;
      for (const s of sleepers.filter((s) => s.until <= now)) {
        sleepers.splice(sleepers.indexOf(s), 1);
        s.resolve();
      }
      await settled();
    },
  };
}

/** Lets every promise callback already due run (one turn of the event loop; no timer of ours is involved). */
const settled = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A gateway whose answers the test gives, one report at a time, recording when each was sent. */
function scriptedGateway(clock: Clock) {
  const sent: { step: number; total: number; at: number; preview: Buffer | undefined; answer: (r: ReportResult | Error) => void }[] = [];
  const send: ProgressReporterOptions['send'] = (step, total, preview) =>
    new Promise<ReportResult>((resolve, reject) => {
      sent.push({ step, total, at: clock.now(), preview, answer: (r) => (r instanceof Error ? reject(r) : resolve(r)) });
    });
  return { send, sent, steps: () => sent.map((s) => s.step) };
}

function rig(intervalMs: number) {
  const time = fakeClock();
  const gateway = scriptedGateway(time.clock);
  const stops: unknown[] = [];
  const errors: unknown[] = [];
  const reporter = createProgressReporter({ intervalMs, clock: time.clock, send: gateway.send, onStop: (r) => stops.push(r), onError: (e) => errors.push(e) });
  return { time, gateway, stops, errors, reporter };
}

const OK: ReportResult = { ok: true };

test('the first step is sent at once; steps within the interval are coalesced into the latest, sent when it ends', async () => {
  const { time, gateway, reporter } = rig(100);
  reporter.step(1, 10);
  assert.equal(gateway.sent.map((s) => [s.step, s.at]), [[1, 0]]);
  gateway.sent[0]!.answer(OK);
  await settled();

  await time.advance(10);
  reporter.step(2, 10);
  await time.advance(10);
  reporter.step(3, 10);
  assert.equal(gateway.steps(), [1], 'nothing before the interval is over');
  await time.advance(79);
  assert.equal(gateway.steps(), [1], 'still 1 ms to go');
  await time.advance(1);
  assert.equal(gateway.sent.map((s) => [s.step, s.total, s.at]), [[1, 10, 0], [3, 10, 100]], 'step 2 was never sent: 3 replaced it');
  assert.is(time.sleeping(), 0, 'one wait, not one per step');
});

test('one report at a time: a step during a slow answer waits for it, then goes at once if the interval is over', async () => {
  const { time, gateway, reporter } = rig(100);
  reporter.step(1, 4);
  await time.advance(250);
  reporter.step(2, 4);
  reporter.step(3, 4);
  assert.equal(gateway.steps(), [1], 'the first answer is not in yet');
  assert.is(time.sleeping(), 0, 'nor does a timer wait for it');
  gateway.sent[0]!.answer(OK);
  await settled();
  assert.equal(gateway.sent.map((s) => [s.step, s.at]), [[1, 0], [3, 250]]);
});

test('a slow answer that ends inside the interval: the next report waits out the rest of it, counted from the last send', async () => {
  const { time, gateway, reporter } = rig(100);
  reporter.step(1, 4);
  await time.advance(30);
  reporter.step(2, 4);
  gateway.sent[0]!.answer(OK);
  await settled();
  assert.equal(gateway.steps(), [1]);
  await time.advance(69);
  assert.equal(gateway.steps(), [1]);
  await time.advance(1);
  assert.equal(gateway.sent.map((s) => [s.step, s.at]), [[1, 0], [2, 100]]);
});

test('finish() sends the last step without waiting out the interval and resolves only once its answer is in', async () => {
  const { time, gateway, reporter } = rig(100);
  reporter.step(1, 2);
  gateway.sent[0]!.answer(OK);
  await time.advance(10);
  reporter.step(2, 2);
  assert.is(time.sleeping(), 1);
  let finished = false;
  const finishing = reporter.finish().then(() => (finished = true));
  await settled();
  assert.equal(gateway.sent.map((s) => [s.step, s.at]), [[1, 0], [2, 10]]);
  assert.is(time.sleeping(), 0, 'the wait was dropped');
  assert.not.ok(finished, 'the last answer decides whether the images are stored: it is waited for');
  gateway.sent[1]!.answer(OK);
  await finishing;
  await time.advance(1000);
  assert.is(gateway.sent.length, 2, 'nothing sent twice');
});

test('finish() while a report is in flight waits for it, then sends the step that came after', async () => {
  const { gateway, reporter } = rig(100);
  reporter.step(1, 2);
  reporter.step(2, 2);
  const finishing = reporter.finish();
  await settled();
  assert.equal(gateway.steps(), [1]);
  gateway.sent[0]!.answer(OK);
  await settled();
  assert.equal(gateway.steps(), [1, 2]);
  gateway.sent[1]!.answer(OK);
  await finishing;
});

test('a stop answer is passed on once and nothing is sent after it', async () => {
  const { time, gateway, stops, reporter } = rig(0);
  reporter.step(1, 5);
  reporter.step(2, 5);
  const canceled: ReportResult = { ok: false, code: 'canceled', message: 'canceled by the client' };
  gateway.sent[0]!.answer(canceled);
  await settled();
  assert.equal(stops, [canceled]);
  reporter.step(3, 5);
  await time.advance(1000);
  await reporter.finish();
  assert.equal(gateway.steps(), [1], 'step 2 (pending at the stop), 3 and the finish are not sent');
});

test('a report that fails is passed to onError and the reports go on', async () => {
  const { gateway, errors, stops, reporter } = rig(0);
  reporter.step(1, 3);
  reporter.step(2, 3);
  const unreachable = new Error('gateway unavailable (simulated)');
  gateway.sent[0]!.answer(unreachable);
  await settled();
  assert.equal(errors, [unreachable]);
  assert.equal(stops, []);
  assert.equal(gateway.steps(), [1, 2]);
});

test('close() drops the step waiting for its turn, and sends nothing more', async () => {
  const { time, gateway, reporter } = rig(100);
  reporter.step(1, 3);
  gateway.sent[0]!.answer(OK);
  await settled();
  reporter.step(2, 3);
  assert.is(time.sleeping(), 1);
  reporter.close();
  assert.is(time.sleeping(), 0);
  reporter.step(3, 3);
  await time.advance(1000);
  assert.equal(gateway.steps(), [1]);
});

test('a preview rides with its step; coalesced into a later step, it is carried by that report, never lost or sent twice', async () => {
  const { time, gateway, reporter } = rig(100);
  const first = Buffer.from('preview of step 1');
  const second = Buffer.from('preview of step 2');
  reporter.step(1, 10, first);
  gateway.sent[0]!.answer(OK);
  await settled();
  reporter.step(2, 10, second);
  reporter.step(3, 10);
  await time.advance(100);
  assert.equal(gateway.sent.map((s) => [s.step, s.preview?.toString()]), [[1, 'preview of step 1'], [3, 'preview of step 2']]);
  gateway.sent[1]!.answer(OK);
  await settled();
  reporter.step(4, 10);
  await time.advance(100);
  assert.is(gateway.sent[2]!.preview, undefined, 'a sent preview is not sent again');
});

test('preview throttle: the first step always, then at most one per interval', () => {
  let now = 1000;
  const throttle = createPreviewThrottle(500, { now: () => now });
  const due: number[] = [];
  for (let step = 1; step <= 30; step++) {
    if (throttle.due()) due.push(step);
    now += 60; // a step every 60 ms
  }
  // Steps at 1000, 1060, …: due at 1000, then the first at or past 1500, 2020, …
  assert.equal(due, [1, 10, 19, 28]);
});

test.run();
