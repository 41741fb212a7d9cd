// Webhooks in the embedded mode: PGlite, open on loopback (the anonymous owner's secret signs),
// the same migration, triggers and LISTEN as on a server.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Webhook } from 'standardwebhooks';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { submit } from '../helpers/submit.ts';
import { eventually, startReceiver } from './receiver.ts';

const it = suite<{ t: TestGateway }>('webhooks, embedded (PGlite)');

it.before(async (ctx) => {
  ctx.t = await startTestGateway({ store: 'pglite', broker: 'memory', env: { WEBHOOK_RETRY_BASE_MS: '5' } });
});
it.after(({ t }) => t.stop());

it("every event of a generation reaches a loopback receiver, signed with the open mode's secret", async ({ t }) => {
  const hook = await startReceiver();
  try {
    const id = await submit(t, { prompt: 'a sword', num_inference_steps: 4, webhook: `${hook.url}/in`, webhook_events_filter: ['completed', 'start'] });
    assert.is((await t.runner(`/generations/${id}/claim`, { runner_id: 'r1' })).status, 200);
    await hook.waitFor(1);
    assert.is((await t.runner(`/generations/${id}/progress`, { attempt: 1, step: 2, total: 4 })).status, 200);
    assert.is((await t.runner(`/generations/${id}/complete`, { attempt: 1, images: [{ key: `generated/${id}/0.png` }] })).status, 200);
    const got = await hook.waitFor(2);
    const { key } = (await (await t.call('GET', '/v1/webhooks/default/secret')).json()) as { key: string };
    const bodies = got.map((r) => new Webhook(key).verify(r.body, r.headers as Record<string, string>) as any);
    assert.equal(bodies.map((b) => b.status), ['processing', 'completed']);
    assert.equal(bodies[1].webhook_events_filter, ['start', 'completed'], 'stored in the order events happen');
    const list = await eventually(
      async () => ((await (await t.call('GET', `/v1/generations/${id}/webhook-deliveries`)).json()) as any).data as any[],
      (d) => d.length === 2,
    );
    assert.equal(list.map((d) => [d.event, d.status_code]), [['completed', 200], ['start', 200]]);
  } finally {
    await hook.close();
  }
});

it.run();
