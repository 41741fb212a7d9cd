// withRetry on a fake clock: the waits are recorded and time moves only when the code sleeps, so
// each bound (tries, elapsed time, the delay cap, Retry-After) is checked as numbers.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { realClock, RetriesExhaustedError, withRetry, type Clock, type RetryPolicy } from '../../src/core/retry.ts';

const policy: RetryPolicy = { attempts: 6, baseDelayMs: 100, maxDelayMs: 1000, maxElapsedMs: 60_000 };

function fakeClock(random = 0.5) {
  let now = 0;
  const waits: number[] = [];
  const clock: Clock = {
    now: () => now,
    random: () => random,
    sleep: async (ms) => {
      waits.push(ms);
      now += ms;
    },
  };
  return { clock, waits };
}

/** A task that fails `failures` times with Error('down #n'), then answers 'up'. */
function flaky(failures: number) {
  const tries: number[] = [];
  const task = async (n: number) => {
    tries.push(n);
    if (tries.length <= failures) throw new Error(`down #${tries.length}`);
    return 'up';
  };
  return { task, tries };
}

test('a first success neither waits nor retries', async () => {
  const { clock, waits } = fakeClock();
  const f = flaky(0);
  assert.is(await withRetry(f.task, policy, { clock }), 'up');
  assert.equal(f.tries, [1]);
  assert.equal(waits, []);
});

test('full jitter: each wait is random · base·2ⁿ, capped at maxDelayMs; the task is told its try number', async () => {
  const { clock, waits } = fakeClock(0.5);
  const f = flaky(5);
  const retried: [string, number, number][] = [];
  const onRetry = (err: unknown, tries: number, wait: number) => retried.push([(err as Error).message, tries, wait]);
  assert.is(await withRetry(f.task, policy, { clock, onRetry }), 'up');
  assert.equal(f.tries, [1, 2, 3, 4, 5, 6]);
  assert.equal(waits, [50, 100, 200, 400, 500], 'base·2ⁿ reaches 1600 on the fifth retry; the cap holds it at 1000');
  assert.equal(retried[0], ['down #1', 1, 50]);
  assert.is(retried.length, 5);
});

test('after policy.attempts tries: RetriesExhaustedError with the count and the last failure', async () => {
  const { clock, waits } = fakeClock();
  const f = flaky(10);
  const err = await withRetry(f.task, { ...policy, attempts: 3 }, { clock }).catch((e: unknown) => e);
  assert.instance(err, RetriesExhaustedError);
  assert.is((err as RetriesExhaustedError).tries, 3);
  assert.is(((err as RetriesExhaustedError).cause as Error).message, 'down #3');
  assert.is((err as Error).message, 'down #3 (after 3 tries)');
  assert.equal(waits, [50, 100]);
});

test('no retry starts after maxElapsedMs: the wait that would cross it is not taken', async () => {
  const { clock, waits } = fakeClock(1);
  const f = flaky(10);
  const err = await withRetry(f.task, { ...policy, maxElapsedMs: 350 }, { clock }).catch((e: unknown) => e);
  assert.instance(err, RetriesExhaustedError);
  assert.equal(waits, [100, 200], '300 ms slept; the next wait (400) would end at 700 > 350');
  assert.is((err as RetriesExhaustedError).tries, 3);
});

test('a server-given Retry-After is a floor under the backoff, still capped at maxDelayMs', async () => {
  const { clock, waits } = fakeClock(0.5);
  const f = flaky(3);
  const asked = [700, 5000, 10];
  await withRetry(f.task, policy, { clock, retryAfterMs: () => asked.shift() });
  assert.equal(waits, [700, 1000, 200]);
});

test('a failure that is not transient is thrown as it is, without a retry', async () => {
  const { clock, waits } = fakeClock();
  const f = flaky(10);
  const err = await withRetry(f.task, policy, { clock, isTransient: (e) => (e as Error).message !== 'down #2' }).catch((e: unknown) => e);
  assert.not.instance(err, RetriesExhaustedError);
  assert.is((err as Error).message, 'down #2');
  assert.equal(f.tries, [1, 2]);
  assert.equal(waits, [50]);
});

test('an abort ends the retries: during a try with the signal’s reason, during a wait with the sleep’s rejection', async () => {
  const during = new AbortController();
  const { clock } = fakeClock();
  const reason = new Error('stopping');
  const err = await withRetry(
    async () => {
      during.abort(reason);
      throw new Error('down');
    },
    policy,
    { clock, signal: during.signal },
  ).catch((e: unknown) => e);
  assert.is(err, reason);

  const waiting = new AbortController();
  const tries: number[] = [];
  const pending = withRetry(
    async (n) => {
      tries.push(n);
      throw new Error('down');
    },
    { ...policy, baseDelayMs: 60_000, maxDelayMs: 60_000, maxElapsedMs: 600_000 },
    { signal: waiting.signal },
  ).catch((e: unknown) => e);
  // The real clock's sleep rejects as soon as the signal aborts; the minute is never waited.
  await Promise.resolve();
  waiting.abort(reason);
  const aborted = (await pending) as Error;
  assert.is(aborted.name, 'AbortError');
  assert.is(aborted.cause, reason);
  assert.equal(tries, [1]);
});

test('the real clock’s sleep rejects at once when aborted, an AbortError carrying the reason', async () => {
  const c = new AbortController();
  const reason = new Error('stop');
  const sleeping = realClock.sleep(60_000, c.signal).catch((e: unknown) => e);
  c.abort(reason);
  const err = (await sleeping) as Error;
  assert.is(err.name, 'AbortError');
  assert.is(err.cause, reason);
  assert.ok(realClock.random() >= 0 && realClock.random() < 1);
});

test.run();
