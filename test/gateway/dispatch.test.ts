// No dual write: submits succeed while the broker is unreachable, and every pending job is
// published (once confirmed) as soon as it is back. Real RabbitMQ behind a TCP proxy we cut.
import amqp, { type Channel, type ChannelModel, type ConsumeMessage } from 'amqplib';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { topologyFor } from '../../src/queue/rabbitmq.ts';
import { ANONYMOUS_KEY_ID } from '../../src/store/apiKey.ts';
import { insertGeneration } from '../../src/store/sql/insertGeneration.ts';
import { countOutbox } from '../helpers/store.ts';
import { watchChanges } from '../helpers/changes.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { AMQP_URL } from '../helpers/services.ts';
import { submit } from '../helpers/submit.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';

interface Ctx {
  t: TestGateway;
  proxy: TcpProxy;
  conn: ChannelModel;
  ch: Channel;
  received: Map<string, ConsumeMessage>;
  waiters: Map<string, () => void>;
}

const it = suite<Ctx>('dispatcher and broker outages');

it.before(async (ctx) => {
  const broker = new URL(AMQP_URL);
  ctx.proxy = await startTcpProxy(broker.hostname, Number(broker.port || 5672));
  const viaProxy = new URL(AMQP_URL);
  viaProxy.port = String(ctx.proxy.port);
  ctx.t = await startTestGateway({ store: 'postgres', broker: 'rabbitmq', amqpUrl: viaProxy.toString(), env: { QUEUE_DELIVERY_LIMIT: '2' } });
  // The test's own consumer talks to the broker directly, not through the proxy.
  await new Promise<void>((resolve) => ctx.t.gw.queue.onConnected(resolve));
  ctx.conn = await amqp.connect(AMQP_URL);
  ctx.ch = await ctx.conn.createChannel();
  ctx.received = new Map();
  ctx.waiters = new Map();
});
it.after(async ({ t, proxy, conn }) => {
  await conn.close();
  await t.stop();
  await proxy.close();
});

/** Consumes the work queue, acking nothing until told (messages stay with this test). */
async function consume(ctx: Ctx) {
  await ctx.ch.consume(topologyFor(ctx.t.prefix).workQueue, (msg) => {
    if (!msg) return;
    const id = JSON.parse(msg.content.toString()).id as string;
    ctx.received.set(id, msg);
    ctx.waiters.get(id)?.();
  });
}
const delivered = (ctx: Ctx, id: string) =>
  ctx.received.has(id) ? Promise.resolve() : new Promise<void>((resolve) => ctx.waiters.set(id, resolve));

it('a submit is published with the job id, parameters and schema version, persistent', async (ctx) => {
  await consume(ctx);
  const id = await submit(ctx.t, { prompt: 'a gem', seed: 7 });
  await delivered(ctx, id);
  const msg = ctx.received.get(id)!;
  const body = JSON.parse(msg.content.toString());
  assert.is(body.v, 1);
  assert.is(body.id, id);
  assert.is(body.params.prompt, 'a gem');
  assert.is(body.params.seed, 7);
  assert.is(msg.properties.deliveryMode, 2, 'persistent');
  assert.is(msg.properties.messageId, id);
  ctx.ch.ack(msg);
  await ctx.t.gw.dispatcher.drained();
  assert.is(await countOutbox(ctx.t.gw.db), 0, 'cleared from the outbox once confirmed');
});

it('broker unreachable: submits still succeed; all are published once it is back', async (ctx) => {
  const { t, proxy } = ctx;
  proxy.cut();
  const ready = await t.call('GET', '/readyz');
  assert.is(ready.status, 503);
  const body = (await ready.json()) as Record<string, unknown>;
  assert.equal({ status: body.status, database: body.database, broker: body.broker }, { status: 'unavailable', database: true, broker: false });

  const ids: string[] = [];
  for (let i = 0; i < 5; i++) ids.push(await submit(t, { prompt: `outage item ${i}`, seed: 7 }));
  await t.gw.dispatcher.drained();
  const waiting = await t.gw.db.query(
    'SELECT count(*) AS n FROM dispatch_outbox WHERE generation_id = ANY($1::uuid[])',
    [ids],
  );
  assert.is(Number(waiting[0]!.n), 5, 'all stay in the outbox while the broker is away');
  assert.ok(ids.every((id) => !ctx.received.has(id)));

  proxy.restore();
  await Promise.all(ids.map((id) => delivered(ctx, id)));
  for (const id of ids) ctx.ch.ack(ctx.received.get(id)!);
  assert.is((await t.call('GET', '/readyz')).status, 200);
  await t.gw.dispatcher.drained();
  assert.is(await countOutbox(t.gw.db), 0);
});

it('the connection drops mid-run: reconnects without a restart and keeps publishing', async (ctx) => {
  ctx.proxy.cut();
  ctx.proxy.restore();
  const id = await submit(ctx.t, { prompt: 'after a blip', seed: 7 });
  await delivered(ctx, id);
  ctx.ch.ack(ctx.received.get(id)!);
});

it('a job committed but never handed to the dispatcher (a crash in between) is published by the sweep', async (ctx) => {
  const orphan = await insertGeneration(ctx.t.gw.db, {
    apiKeyId: ANONYMOUS_KEY_ID,
    maxUnfinished: 1000,
    maxUnfinishedCost: 1e9,
    idempotencyKey: null,
    requestHash: null,
    params: { prompt: 'orphan', negative_prompt: '', num_inference_steps: 5, guidance_scale: 7.5, seed: 1, width: 512, height: 512, scheduler: 'ddim', num_images: 1 },
  });
  await ctx.t.gw.dispatcher.drained();
  await delivered(ctx, orphan!.id);
  ctx.ch.ack(ctx.received.get(orphan!.id)!);
  assert.is(await countOutbox(ctx.t.gw.db), 0);
});

it('a message past its delivery limit is dead-lettered and its generation failed', async (ctx) => {
  const id = await submit(ctx.t, { prompt: 'cursed item', seed: 7 });
  // RabbitMQ dead-letters a message returned more times than the limit (2): the third return,
  // as three runners that crashed on it would.
  for (let delivery = 1; delivery <= 3; delivery++) {
    await delivered(ctx, id);
    const msg = ctx.received.get(id)!;
    ctx.received.delete(id);
    const watching = delivery === 3 ? await watchChanges(ctx.t.gw.db, id) : null;
    ctx.ch.nack(msg, false, true);
    await watching?.changed;
  }
  const g = (await (await ctx.t.call('GET', `/v1/generations/${id}`)).json()) as any;
  assert.is(g.status, 'failed');
  assert.is(g.error.code, 'delivery_limit_exceeded');
});

it.run();
