import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { settleOnce } from '../../src/core/once.ts';

test('of the actions sharing a guard, only the first call runs', () => {
  const calls: string[] = [];
  const once = settleOnce();
  const ack = once(() => calls.push('ack'));
  const requeue = once(() => calls.push('requeue'));
  const reject = once(() => calls.push('reject'));
  requeue();
  ack();
  reject();
  requeue();
  assert.equal(calls, ['requeue']);
});

test('separate guards settle separately', () => {
  const calls: string[] = [];
  const first = settleOnce()(() => calls.push('first'));
  const second = settleOnce()(() => calls.push('second'));
  first();
  second();
  first();
  assert.equal(calls, ['first', 'second']);
});

test('an action that throws still counts as the settlement', () => {
  const calls: string[] = [];
  const once = settleOnce();
  const broken = once(() => {
    calls.push('broken');
    throw new Error('channel closed');
  });
  const fallback = once(() => calls.push('fallback'));
  assert.throws(broken, /channel closed/);
  fallback();
  assert.equal(calls, ['broken']);
});

test.run();
