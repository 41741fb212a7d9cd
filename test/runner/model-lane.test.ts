// The model's lanes alone: one stage at a time in arrival order, a stage aborted in line never
// runs, the next in line hears when the running one ends soon, and busy time counts overlapping
// lanes once.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createBusyTime, createLane } from '../../src/runner/model-lane.ts';
import { GenerationAbortedError } from '../../src/runner/pipeline/txt2img.ts';

function deferred<T = void>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

test('stages run one at a time, in the order they asked', async () => {
  const lane = createLane(createBusyTime());
  const log: string[] = [];
  let running = 0;
  let most = 0;
  const gates = [deferred(), deferred(), deferred()];
  const stage = (n: number) => async () => {
    most = Math.max(most, ++running);
    log.push(`start ${n}`);
    await gates[n]!.promise;
    log.push(`end ${n}`);
    running--;
    return n;
  };
  const runs = [0, 1, 2].map((n) => lane.run(stage(n)));
  // The last asked first is opened first: the order is the lane's, not the gates'.
  gates[2]!.resolve();
  gates[1]!.resolve();
  gates[0]!.resolve();
  assert.equal(await Promise.all(runs), [0, 1, 2]);
  assert.is(most, 1);
  assert.equal(log, ['start 0', 'end 0', 'start 1', 'end 1', 'start 2', 'end 2']);
});

test('a stage aborted while in line never runs and the line moves on; a failed stage frees the lane', async () => {
  const lane = createLane(createBusyTime());
  const first = deferred();
  const ran: string[] = [];
  const holding = lane.run(async () => {
    await first.promise;
    throw new Error('the pipeline failed');
  });
  const abort = new AbortController();
  const aborted = lane.run(async () => void ran.push('aborted one'), { signal: abort.signal });
  const after = lane.run(async () => void ran.push('after'));
  abort.abort();
  const err = await aborted.catch((e: unknown) => e);
  assert.instance(err, GenerationAbortedError);
  first.resolve();
  await holding.then(
    () => assert.unreachable(),
    (e: Error) => assert.is(e.message, 'the pipeline failed'),
  );
  await after;
  assert.equal(ran, ['after']);
  const already = new AbortController();
  already.abort();
  assert.instance(await lane.run(async () => 1, { signal: already.signal }).catch((e: unknown) => e), GenerationAbortedError);
});

test('the next in line hears once that the running stage ends soon, also when it gets in line after', async () => {
  const lane = createLane(createBusyTime());
  const told: string[] = [];
  const end = deferred();
  const running = lane.run(async () => {
    lane.endingSoon();
    await end.promise;
  });
  await Promise.resolve();
  const second = lane.run(async () => {}, { onNext: () => told.push('second') });
  const third = lane.run(async () => {}, { onNext: () => told.push('third') });
  lane.endingSoon();
  assert.equal(told, ['second'], 'only the first in line, once');
  end.resolve();
  await Promise.all([running, second, third]);
  assert.equal(told, ['second'], 'the second never said it ends soon');
});

test('busy time counts a moment two lanes run once, and the stretch still running', () => {
  let now = 0;
  const busy = createBusyTime(() => now);
  busy.enter(); // text encoder at 0
  now = 10;
  busy.enter(); // generation at 10
  now = 20;
  busy.leave(); // text encoder done at 20
  now = 50;
  assert.is(busy.busyMs(), 50, 'running: counted up to now');
  busy.leave();
  now = 80;
  busy.enter();
  now = 90;
  busy.leave();
  assert.is(busy.busyMs(), 60);
});

test.run();
