// The embedded mode: PGlite and the in-process queue, the same code paths as production.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeJobMessage } from '../../src/core/message.ts';
import type { Delivery } from '../../src/queue/types.ts';
import { watchChanges } from '../helpers/changes.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';

const it = suite<{ t: TestGateway }>('embedded: PGlite + in-process queue');
it.before(async (ctx) => {
  ctx.t = await startTestGateway({ store: 'pglite', broker: 'memory', env: { QUEUE_DELIVERY_LIMIT: '1' } });
});
it.after(({ t }) => t.stop());

/** Takes the next delivery from the in-process queue. */
function nextDelivery(t: TestGateway): Promise<Delivery> {
  return new Promise((resolve) => {
    const consumer = t.gw.queue.consume(
      async (d) => {
        (await consumer).cancel();
        resolve(d);
      },
      { prefetch: 1 },
    );
  });
}

it('submit → queued message → claim → complete, through the v1 and compatibility routes', async ({ t }) => {
  assert.equal(await (await t.call('GET', '/readyz')).json(), { status: 'ready', database: true, broker: true, api: 'open: no API key exists yet; requests without a key are let in (loopback only) until the first is created' });
  const got = nextDelivery(t);
  const { request_id: id } = (await (await t.call('POST', '/generate', { body: { prompt: 'a scroll' } })).json()) as any;
  const delivery = await got;
  const message = decodeJobMessage(delivery.body);
  assert.is(message.id, id);
  assert.is(message.params.seed, 50);
  assert.is(delivery.deliveryCount, 1);
  assert.is((await t.runner(`/generations/${id}/claim`, { runner_id: 'embedded' })).status, 200);
  assert.is((await t.runner(`/generations/${id}/complete`, { attempt: 1, images: [{ key: `generated/${id}/0.png` }] })).status, 200);
  delivery.ack();
  const v1 = (await (await t.call('GET', `/v1/generations/${id}`)).json()) as any;
  assert.is(v1.status, 'completed');
  assert.equal(await (await t.call('GET', `/status/${id}`)).json(), {
    request_id: id,
    status: 'Completed',
    image_url: `${t.url}/v1/generations/${id}/images/0`,
  });
});

it('a job returned more often than the delivery limit fails its generation', async ({ t }) => {
  const first = nextDelivery(t);
  const id = ((await (await t.call('POST', '/v1/generations', { body: { prompt: 'a cursed scroll' } })).json()) as any).id;
  (await first).requeue();
  const second = await nextDelivery(t);
  assert.is(second.deliveryCount, 2);
  const watching = await watchChanges(t.gw.db, id);
  second.requeue();
  await watching.changed;
  const g = (await (await t.call('GET', `/v1/generations/${id}`)).json()) as any;
  assert.is(g.status, 'failed');
  assert.is(g.error.code, 'delivery_limit_exceeded');
});

it('an unreadable message is rejected to the dead letters and fails its generation', async ({ t }) => {
  const got = nextDelivery(t);
  const id = ((await (await t.call('POST', '/v1/generations', { body: { prompt: 'a scroll' } })).json()) as any).id;
  const watching = await watchChanges(t.gw.db, id);
  (await got).reject();
  await watching.changed;
  const g = (await (await t.call('GET', `/v1/generations/${id}`)).json()) as any;
  assert.is(g.error.code, 'message_rejected');
});

it.run();
