// The operator metrics move with real events on a real gateway over PostgreSQL: the oldest pending
// generation's age (read from the database at each scrape), the time to the first step (when a
// runner reports step 1) and the end-to-end latency by size class (at completion). The dead-letter
// and webhook counters are asserted where those events are made (test/gateway/dead-letters.test.ts,
// test/webhooks/*.test.ts).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { submit } from '../helpers/submit.ts';

const it = suite<{ t: TestGateway }>('operator metrics');

it.before(async (ctx) => {
  ctx.t = await startTestGateway({ store: 'postgres', broker: 'memory' });
});

it.after(({ t }) => t.stop());

/** The value of one sample line of the gateway's /metrics, or undefined when absent. */
async function sample(t: TestGateway, series: string): Promise<number | undefined> {
  const text = await (await t.call('GET', '/metrics')).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

const ok = async (res: Promise<Response>) => {
  const r = await res;
  assert.is(r.status, 200, await r.clone().text());
};

it('the rare-event counters the alerts read are exported at 0 before their first event', async ({ t }) => {
  for (const series of [
    'itemgen_generations_dead_lettered_total{reason="delivery_limit"}',
    'itemgen_generations_dead_lettered_total{reason="rejected"}',
    'itemgen_webhook_deliveries_total{outcome="gave_up"}',
    'itemgen_webhook_deliveries_total{outcome="failed"}',
  ]) {
    assert.is(await sample(t, series), 0, series);
  }
});

it('oldest pending age, time to first step and end-to-end latency by size follow a generation', async ({ t }) => {
  assert.is(await sample(t, 'itemgen_oldest_pending_generation_age_seconds'), 0, 'nothing pending yet');
  assert.is(await sample(t, 'itemgen_time_to_first_step_seconds_count'), 0);

  const small = await submit(t, { prompt: 'a small sword', width: 256, height: 256, num_inference_steps: 2 });
  const large = await submit(t, { prompt: 'a large shield', width: 768, height: 768, num_inference_steps: 2 });
  const waiting = await sample(t, 'itemgen_oldest_pending_generation_age_seconds');
  assert.ok(waiting !== undefined && waiting > 0 && waiting < 60, `oldest pending age ${waiting}`);

  // The oldest is claimed: the age is now the younger one's, which is no older.
  await ok(t.runner(`/generations/${small}/claim`, { runner_id: 'r1' }));
  const younger = await sample(t, 'itemgen_oldest_pending_generation_age_seconds');
  assert.ok(younger !== undefined && younger > 0, `younger pending age ${younger}`);

  await ok(t.runner(`/generations/${small}/progress`, { attempt: 1, step: 1, total: 2 }));
  assert.is(await sample(t, 'itemgen_time_to_first_step_seconds_count'), 1);
  // Later steps are not first steps.
  await ok(t.runner(`/generations/${small}/progress`, { attempt: 1, step: 2, total: 2 }));
  assert.is(await sample(t, 'itemgen_time_to_first_step_seconds_count'), 1);
  const firstStep = await sample(t, 'itemgen_time_to_first_step_seconds_sum');
  assert.ok(firstStep !== undefined && firstStep > 0 && firstStep < 60, `time to first step ${firstStep}`);

  await ok(t.runner(`/generations/${small}/complete`, { attempt: 1, images: [{ key: `generated/${small}/0.png` }] }));
  assert.is(await sample(t, 'itemgen_generation_duration_seconds_count{size="small"}'), 1);
  assert.is(await sample(t, 'itemgen_generation_duration_seconds_count{size="large"}'), undefined, 'no large one finished yet');

  await ok(t.runner(`/generations/${large}/claim`, { runner_id: 'r1' }));
  assert.is(await sample(t, 'itemgen_oldest_pending_generation_age_seconds'), 0, 'none pending once both are claimed');
  await ok(t.runner(`/generations/${large}/complete`, { attempt: 1, images: [{ key: `generated/${large}/0.png` }] }));
  assert.is(await sample(t, 'itemgen_generation_duration_seconds_count{size="large"}'), 1);
  assert.is(await sample(t, 'itemgen_generation_duration_seconds_count{size="small"}'), 1);
  // A completion replayed (its answer was lost) changes nothing and is not counted again.
  const replay = await t.runner(`/generations/${large}/complete`, { attempt: 1, images: [{ key: `generated/${large}/0.png` }] });
  assert.is(replay.status, 409);
  assert.is(await sample(t, 'itemgen_generation_duration_seconds_count{size="large"}'), 1);
});

it('METRICS_PORT: off loopback, /metrics on the main port needs the token, and the loopback port serves it without', async () => {
  const t = await startTestGateway({ store: 'postgres', broker: 'memory', env: { HOST: '0.0.0.0', ALLOWED_HOSTS: '127.0.0.1', METRICS_PORT: '0' } });
  try {
    assert.is((await t.call('GET', '/metrics')).status, 401);
    const url = t.gw.metricsUrl;
    assert.ok(url && new URL(url).hostname === '127.0.0.1', String(url));
    const res = await fetch(url);
    assert.is(res.status, 200);
    assert.match(await res.text(), /^itemgen_oldest_pending_generation_age_seconds 0$/m);
    assert.is((await fetch(new URL('/healthz', url))).status, 404, 'nothing but /metrics there');
  } finally {
    await t.stop();
  }
  const plain = await startTestGateway({ store: 'pglite', broker: 'memory' });
  try {
    assert.is(plain.gw.metricsUrl, null, 'not served unless asked for');
  } finally {
    await plain.stop();
  }
});

it.run();
