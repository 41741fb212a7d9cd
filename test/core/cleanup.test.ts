import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cleanupStack } from '../../src/core/cleanup.ts';
import { recordingLogger } from '../helpers/log.ts';

test('steps run newest first, each after the previous one settled', async () => {
  const log = recordingLogger();
  const stack = cleanupStack(log);
  const events: string[] = [];
  for (const name of ['db', 'queue', 'server']) {
    stack.push(async () => {
      events.push(`${name} start`);
      await Promise.resolve();
      events.push(`${name} done`);
    });
  }
  await stack.close();
  assert.equal(events, ['server start', 'server done', 'queue start', 'queue done', 'db start', 'db done']);
  assert.equal(log.entries, []);
});

test('a failing step is logged and the older ones still run', async () => {
  const log = recordingLogger();
  const stack = cleanupStack(log);
  const ran: string[] = [];
  stack.push(async () => ran.push('db'));
  stack.push(async () => {
    throw new Error('queue stuck');
  });
  stack.push(() => {
    throw new Error('thrown, not rejected');
  });
  await stack.close();
  assert.equal(ran, ['db']);
  assert.equal(
    log.at('warn').map((e) => [e.msg, (e.fields.err as Error).message]),
    [
      ['shutdown step failed', 'thrown, not rejected'],
      ['shutdown step failed', 'queue stuck'],
    ],
  );
});

test('closing twice runs each step once; a step pushed later runs on the next close', async () => {
  const stack = cleanupStack(recordingLogger());
  const ran: string[] = [];
  stack.push(async () => ran.push('first'));
  await stack.close();
  await stack.close();
  stack.push(async () => ran.push('second'));
  await stack.close();
  assert.equal(ran, ['first', 'second']);
});

test.run();
