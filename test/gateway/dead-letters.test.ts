// The dead-letter handler alone, on a fake queue and database: which failure each kind of letter
// writes, that the metric counts only generations it really failed, and that every letter is acked.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { consumeDeadLetters } from '../../src/gateway/dead-letters.ts';
import { createGatewayMetrics } from '../../src/gateway/metrics.ts';
import type { DeadLetter, DeadLetterReason, JobQueue } from '../../src/queue/types.ts';
import type { Queryable, Row } from '../../src/store/types.ts';
import { recordingLogger } from '../helpers/log.ts';

const ID = '3f1c2d4e-5a6b-4c7d-8e9f-0a1b2c3d4e5f';

/** A queue whose dead-letter handler the test calls itself, and a database that answers each UPDATE with `rows`. */
async function rig(rows: Row[]) {
  let handler: ((l: DeadLetter) => void | Promise<void>) | null = null;
  const queue = {
    consumeDeadLetters: async (h: (l: DeadLetter) => void | Promise<void>) => {
      handler = h;
      return { cancel: async () => {} };
    },
  } as unknown as JobQueue;
  const queries: unknown[][] = [];
  const db: Queryable = {
    query: async <T extends Row>(_text: string, params: unknown[] = []) => {
      queries.push(params);
      return rows as T[];
    },
  };
  const metrics = createGatewayMetrics(() => true);
  const log = recordingLogger();
  await consumeDeadLetters({ db, queue, metrics, log, deliveryLimit: 5 });
  const deliver = async (body: string, reason: DeadLetterReason) => {
    let acked = 0;
    await handler!({ body: Buffer.from(body), reason, ack: () => void (acked += 1) });
    return acked;
  };
  const counted = async () => Object.fromEntries((await metrics.deadLettered.get()).values.map((v) => [v.labels.reason, v.value]));
  return { deliver, queries, counted, log };
}

test('a message past its delivery limit fails its generation, naming the limit', async () => {
  const r = await rig([{ id: ID, status: 'failed' }]);
  assert.is(await r.deliver(JSON.stringify({ id: ID }), 'delivery_limit'), 1, 'acked once');
  assert.equal(r.queries, [[ID, null, 'delivery_limit_exceeded', 'The job was delivered 5 times without finishing; it was given up.']]);
  assert.equal(await r.counted(), { delivery_limit: 1, rejected: 0 });
  assert.equal(r.log.at('warn').map((e) => [e.msg, e.fields]), [['dead-lettered job message', { id: ID, reason: 'delivery_limit' }]]);
});

test('a rejected message of a generation already finished is acked and not counted', async () => {
  const r = await rig([]);
  assert.is(await r.deliver(JSON.stringify({ id: ID }), 'rejected'), 1);
  assert.equal(r.queries, [[ID, null, 'message_rejected', 'A runner could not read the job message.']]);
  assert.equal(await r.counted(), { delivery_limit: 0, rejected: 0 });
});

test('a body without a generation id touches no generation and is still acked', async () => {
  for (const body of ['not json', JSON.stringify({ id: 'short' }), JSON.stringify({ id: 7 })]) {
    const r = await rig([{ id: ID }]);
    assert.is(await r.deliver(body, 'rejected'), 1, body);
    assert.equal(r.queries, [], body);
    assert.equal(r.log.at('warn').map((e) => e.fields), [{ id: null, reason: 'rejected' }], body);
  }
});

test.run();
