// Every public route and its errors, over HTTP, on real PostgreSQL and real RabbitMQ.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { RUNNER_TOKEN, startTestGateway, type TestGateway } from '../helpers/gateway.ts';

const it = suite<{ t: TestGateway; alice: string; bob: string }>('v1 API on PostgreSQL + RabbitMQ');

it.before(async (ctx) => {
  ctx.t = await startTestGateway({
    store: 'postgres',
    broker: 'rabbitmq',
    keys: [{ name: 'alice' }, { name: 'bob', maxUnfinished: 2 }],
  });
  ctx.alice = ctx.t.keys.alice!;
  ctx.bob = ctx.t.keys.bob!;
});
it.after(({ t }) => t.stop());

const expectProblem = async (res: Response, status: number, code: string) => {
  assert.is(res.status, status, `status for ${code}`);
  assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
  const body = (await res.json()) as Record<string, unknown>;
  assert.is(body.code, code);
  assert.is(body.status, status);
  assert.type(body.detail, 'string');
  assert.not.match(JSON.stringify(body), /at .*\.ts:\d+/, 'no stack trace');
  return body;
};

it('submit → 202 with Location, the parameters with a recorded seed, and the read-back', async ({ t, alice }) => {
  const res = await t.call('POST', '/v1/generations', { key: alice, body: { prompt: 'tsuki_advtr, a sword', width: 768 } });
  assert.is(res.status, 202);
  const g = (await res.json()) as any;
  assert.is(res.headers.get('location'), `${t.url}/v1/generations/${g.id}`);
  assert.is(g.status, 'pending');
  assert.equal(g.progress, { step: 0, total: 50 });
  assert.is(g.params.width, 768);
  assert.ok(Number.isInteger(g.params.seed) && g.params.seed >= 0 && g.params.seed < 2 ** 32);
  assert.is(g.started_at, null);

  const read = await t.call('GET', `/v1/generations/${g.id}`, { key: alice });
  assert.is(read.status, 200);
  const back = (await read.json()) as any;
  assert.equal(back.params, g.params);
  assert.type(back.queue_position, 'number');
  assert.is(back.links.events, `${t.url}/v1/generations/${g.id}/events`);
});

it('a given seed is kept', async ({ t, alice }) => {
  const res = await t.call('POST', '/v1/generations', { key: alice, body: { prompt: 'a bow', seed: 1234 } });
  assert.is(((await res.json()) as any).params.seed, 1234);
});

it('GET /v1/models: empty until a runner registers its model, then that model with the limits; re-registering updates it', async ({ t, alice }) => {
  const list = async () => ((await (await t.call('GET', '/v1/models', { key: alice })).json()) as any).data;
  assert.equal(await list(), []);
  const model = { name: 'tsuki-v1', hash: 'c'.repeat(64), execution_provider: 'cuda', default_scheduler: 'dpmpp_2m', default_negative_prompt: 'blurry', prompt_prefix: 'tsuki_advtr, ' };
  const put = (name: string, body: unknown) => t.call('PUT', `/internal/v1/models/${name}`, { body, headers: { authorization: `Bearer ${RUNNER_TOKEN}` } });
  assert.is((await put('tsuki-v1', model)).status, 200);
  assert.is((await put('other', model)).status, 422, 'the path and the body name the same model');
  assert.is((await t.call('PUT', '/internal/v1/models/tsuki-v1', { body: model })).status, 401, 'runners only');
  let [listed] = await list();
  assert.equal({ ...listed, limits: undefined, last_seen_at: undefined }, { ...model, limits: undefined, last_seen_at: undefined });
  assert.equal(listed.limits.steps_per_scheduler, { ddim: { max: 150 }, pndm: { max: 150 }, euler: { max: 150 }, euler_a: { max: 150 }, dpmpp_2m: { max: 150 }, lcm: { max: 50 } });
  assert.equal(listed.limits.guidance_scale, { min: 0, max: 30, default: 7.5 });
  assert.is(listed.limits.max_cost, t.gw.settings.maxGenerationCost);
  assert.is((await put('tsuki-v1', { ...model, hash: 'd'.repeat(64) })).status, 200);
  [listed] = await list();
  assert.is(listed.hash, 'd'.repeat(64));
});

it('seed -1 means random: the stored params hold the seed picked', async ({ t, alice }) => {
  const seeds = new Set<number>();
  for (let i = 0; i < 3; i++) {
    const res = await t.call('POST', '/v1/generations', { key: alice, body: { prompt: 'a bow', seed: -1 } });
    assert.is(res.status, 202);
    const g = (await res.json()) as any;
    assert.ok(Number.isInteger(g.params.seed) && g.params.seed >= 0 && g.params.seed < 2 ** 32, String(g.params.seed));
    const claim = (await (await t.runner(`/generations/${g.id}/claim`, { runner_id: 'r1' })).json()) as any;
    assert.is(claim.params.seed, g.params.seed, 'the runner gets the picked seed');
    seeds.add(g.params.seed);
  }
  assert.is(seeds.size, 3);
  await expectProblem(await t.call('POST', '/v1/generations', { key: alice, body: { prompt: 'a bow', seed: -2 } }), 422, 'validation_failed');
});

it('what ran: the runner\'s effective prompts, model, provider, per-image seeds and timings are stored and presented', async ({ t, alice }) => {
  const g = (await (await t.call('POST', '/v1/generations', { key: alice, body: { prompt: 'a helm', num_inference_steps: 2, num_images: 2, seed: 7 } })).json()) as any;
  assert.is((await t.runner(`/generations/${g.id}/claim`, { runner_id: 'r1' })).status, 200);
  const ran = { prompt: 'tsuki_advtr, a helm', negative_prompt: 'blurry, low quality', model: { name: 'tiny', hash: 'b'.repeat(64) }, execution_provider: 'cpu' };
  const timings = { text_encoder_ms: 1.5, denoising_ms: 20, decode_ms: 3, png_ms: 2.5, upload_ms: 4 };
  const images = [{ key: `generated/${g.id}/0.png`, seed: 7 }, { key: `generated/${g.id}/1.png`, seed: 8 }];
  assert.is((await t.runner(`/generations/${g.id}/complete`, { attempt: 1, images, ran, timings })).status, 200);
  const view = (await (await t.call('GET', `/v1/generations/${g.id}`, { key: alice })).json()) as any;
  assert.equal(view.ran, ran);
  assert.equal(view.images.map((i: any) => i.seed), [7, 8]);
  const { queued_ms, ...runner } = view.timings;
  assert.equal(runner, timings);
  assert.ok(queued_ms >= 0 && queued_ms === Date.parse(view.started_at) - Date.parse(view.created_at));
  const bad = await t.runner(`/generations/${g.id}/complete`, { attempt: 1, images, ran: { ...ran, model: { name: 'tiny', hash: 'not-hex' } } });
  assert.is(bad.status, 422, 'the contract checks what ran');
});

it('the full life of a generation as the client sees it', async ({ t, alice }) => {
  const g = (await (await t.call('POST', '/v1/generations', { key: alice, body: { prompt: 'a helm', num_inference_steps: 4, num_images: 2 } })).json()) as any;
  const claim = await t.runner(`/generations/${g.id}/claim`, { runner_id: 'r1' });
  assert.is(claim.status, 200);
  const c = (await claim.json()) as any;
  assert.is(c.attempt, 1);
  assert.equal(c.params, g.params);
  assert.is((await t.runner(`/generations/${g.id}/progress`, { attempt: 1, step: 2, total: 4 })).status, 200);
  let view = (await (await t.call('GET', `/v1/generations/${g.id}`, { key: alice })).json()) as any;
  assert.is(view.status, 'processing');
  assert.equal(view.progress, { step: 2, total: 4 });
  assert.ok(view.started_at);
  assert.is(view.queue_position, undefined);

  const images = [{ key: `generated/${g.id}/0.png`, url: 'https://storage.example/0.png' }, { key: `generated/${g.id}/1.png` }];
  assert.is((await t.runner(`/generations/${g.id}/complete`, { attempt: 1, images })).status, 200);
  view = (await (await t.call('GET', `/v1/generations/${g.id}`, { key: alice })).json()) as any;
  assert.is(view.status, 'completed');
  // The body of a runner from before what-ran reports (no seeds, no ran): each image's seed follows from params.
  assert.equal(view.images, [
    { index: 0, url: 'https://storage.example/0.png', thumbnail_url: `${t.url}/v1/generations/${g.id}/images/0/thumbnail`, seed: g.params.seed },
    { index: 1, url: `${t.url}/v1/generations/${g.id}/images/1`, thumbnail_url: `${t.url}/v1/generations/${g.id}/images/1/thumbnail`, seed: (g.params.seed + 1) % 2 ** 32 },
  ]);
  assert.is(view.ran, undefined);
  assert.equal(Object.keys(view.timings), ['queued_ms']);
  assert.ok(view.finished_at);
  await expectProblem(await t.call('POST', `/v1/generations/${g.id}/cancel`, { key: alice }), 409, 'already_finished');
});

it('failed generations carry the error', async ({ t, alice }) => {
  const g = (await (await t.call('POST', '/v1/generations', { key: alice, body: { prompt: 'a ring' } })).json()) as any;
  await t.runner(`/generations/${g.id}/claim`, { runner_id: 'r1' });
  assert.is((await t.runner(`/generations/${g.id}/fail`, { attempt: 1, code: 'out_of_memory', message: 'CUDA OOM' })).status, 200);
  const view = (await (await t.call('GET', `/v1/generations/${g.id}`, { key: alice })).json()) as any;
  assert.is(view.status, 'failed');
  assert.equal(view.error, { code: 'out_of_memory', message: 'CUDA OOM' });
  assert.is(view.images, undefined);
});

it('cancel: 200 while pending or processing; the runner is told to stop', async ({ t, alice }) => {
  const p = (await (await t.call('POST', '/v1/generations', { key: alice, body: { prompt: 'a staff' } })).json()) as any;
  const res = await t.call('POST', `/v1/generations/${p.id}/cancel`, { key: alice });
  assert.is(res.status, 200);
  assert.is(((await res.json()) as any).status, 'canceled');

  const q = (await (await t.call('POST', '/v1/generations', { key: alice, body: { prompt: 'a wand' } })).json()) as any;
  await t.runner(`/generations/${q.id}/claim`, { runner_id: 'r1' });
  assert.is((await t.call('POST', `/v1/generations/${q.id}/cancel`, { key: alice })).status, 200);
  const stop = await expectProblem(await t.runner(`/generations/${q.id}/progress`, { attempt: 1, step: 1, total: 50 }), 409, 'canceled');
  assert.is(stop.stop, true);
  await expectProblem(await t.runner(`/generations/${q.id}/complete`, { attempt: 1, images: [{ key: 'k' }] }), 409, 'canceled');
  await expectProblem(await t.call('POST', `/v1/generations/${q.id}/cancel`, { key: alice }), 409, 'already_finished');
});

it('list: newest first, filtered by status, cursor pagination, own generations only', async () => {
  const carol = await startTestGateway({ store: 'postgres', keys: [{ name: 'carol' }, { name: 'dave' }] });
  try {
    const key = carol.keys.carol!;
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push(((await (await carol.call('POST', '/v1/generations', { key, body: { prompt: `item ${i}` } })).json()) as any).id);
    }
    await carol.call('POST', `/v1/generations/${ids[1]}/cancel`, { key });
    const page1 = (await (await carol.call('GET', '/v1/generations?limit=2', { key })).json()) as any;
    assert.equal(page1.data.map((g: any) => g.id), [ids[4], ids[3]]);
    assert.type(page1.next_cursor, 'string');
    const page2 = (await (await carol.call('GET', `/v1/generations?limit=2&cursor=${page1.next_cursor}`, { key })).json()) as any;
    assert.equal(page2.data.map((g: any) => g.id), [ids[2], ids[1]]);
    const page3 = (await (await carol.call('GET', `/v1/generations?limit=2&cursor=${page2.next_cursor}`, { key })).json()) as any;
    assert.equal(page3.data.map((g: any) => g.id), [ids[0]]);
    assert.is(page3.next_cursor, null);
    const canceled = (await (await carol.call('GET', '/v1/generations?status=canceled', { key })).json()) as any;
    assert.equal(canceled.data.map((g: any) => g.id), [ids[1]]);
    const dave = (await (await carol.call('GET', '/v1/generations', { key: carol.keys.dave! })).json()) as any;
    assert.equal(dave.data, []);
    await expectProblem(await carol.call('GET', '/v1/generations?limit=0', { key }), 422, 'validation_failed');
    await expectProblem(await carol.call('GET', '/v1/generations?limit=101', { key }), 422, 'validation_failed');
    await expectProblem(await carol.call('GET', '/v1/generations?status=done', { key }), 422, 'validation_failed');
    await expectProblem(await carol.call('GET', '/v1/generations?cursor=abc', { key }), 422, 'validation_failed');
  } finally {
    await carol.stop();
  }
});

it('bad input: each gets its 4xx problem and changes nothing', async ({ t, alice }) => {
  const before = await t.countGenerations();
  const post = (init: Parameters<TestGateway['call']>[2]) => t.call('POST', '/v1/generations', { key: alice, ...init });
  await expectProblem(await post({ raw: '{"prompt": "a sword"', headers: { 'content-type': 'application/json' } }), 400, 'malformed_json');
  await expectProblem(await post({ raw: 'prompt=a', headers: { 'content-type': 'application/x-www-form-urlencoded' } }), 415, 'unsupported_media_type');
  await expectProblem(await post({ body: { prompt: 7 } }), 422, 'validation_failed');
  await expectProblem(await post({ body: [] }), 422, 'validation_failed');
  await expectProblem(await post({ body: null }), 422, 'validation_failed');
  await expectProblem(await post({ body: { prompt: 'a', num_inference_steps: 1e9 } }), 422, 'validation_failed');
  await expectProblem(await post({ body: { prompt: 'a', guidance_scale: 'high' } }), 422, 'validation_failed');
  await expectProblem(await post({ body: { prompt: 'a', seed: -5 } }), 422, 'validation_failed');
  const unknown = await expectProblem(await post({ body: { prompt: 'a', sampler: 'ddim' } }), 422, 'validation_failed');
  assert.match(JSON.stringify(unknown.errors), /sampler/);
  await expectProblem(await post({ body: { prompt: 'x'.repeat(1024 * 1024) } }), 413, 'body_too_large');
  // Without Content-Length (chunked), the limit is enforced while reading.
  const chunk = new TextEncoder().encode('x'.repeat(16 * 1024));
  let sent = 0;
  const chunked = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent === 0) controller.enqueue(new TextEncoder().encode('{"prompt":"'));
      if (sent++ < 8) controller.enqueue(chunk);
      else controller.close();
    },
  });
  const streamed = await fetch(`${t.url}/v1/generations`, {
    method: 'POST',
    headers: { authorization: `Bearer ${alice}`, 'content-type': 'application/json' },
    body: chunked,
    duplex: 'half',
  } as RequestInit);
  await expectProblem(streamed, 413, 'body_too_large');
  await expectProblem(await post({ body: { prompt: 'a' }, headers: { 'idempotency-key': 'k'.repeat(256) } }), 400, 'invalid_idempotency_key');

  await expectProblem(await t.call('GET', '/v1/generations/not-a-uuid', { key: alice }), 400, 'invalid_id');
  await expectProblem(await t.call('POST', '/v1/generations/123/cancel', { key: alice }), 400, 'invalid_id');
  await expectProblem(await t.call('GET', '/v1/generations/8a0f1c2e-3b4d-4e5f-8a6b-7c8d9e0f1a2b', { key: alice }), 404, 'not_found');
  await expectProblem(await t.call('POST', '/v1/generations/8a0f1c2e-3b4d-4e5f-8a6b-7c8d9e0f1a2b/cancel', { key: alice }), 404, 'not_found');
  await expectProblem(await t.call('GET', '/v1/nothing-here', { key: alice }), 404, 'route_not_found');
  assert.is(await t.countGenerations(), before);
});

it('keys: missing, malformed, unknown → 401; a key sees only its own generations', async ({ t, alice, bob }) => {
  const before = await t.countGenerations();
  const body = { prompt: 'a sword' };
  for (const headers of [{} as Record<string, string>, { authorization: 'Basic abc' }, { authorization: 'Bearer igk_unknown' }, { authorization: `Bearer ${alice} x` }]) {
    const res = await t.call('POST', '/v1/generations', { body, headers });
    await expectProblem(res, 401, 'unauthorized');
    assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer/);
  }
  assert.is(await t.countGenerations(), before);

  const mine = (await (await t.call('POST', '/v1/generations', { key: alice, body })).json()) as any;
  await expectProblem(await t.call('GET', `/v1/generations/${mine.id}`, { key: bob }), 404, 'not_found');
  await expectProblem(await t.call('POST', `/v1/generations/${mine.id}/cancel`, { key: bob }), 404, 'not_found');
  await expectProblem(await t.call('GET', `/v1/generations/${mine.id}/events`, { key: bob }), 404, 'not_found');
  await expectProblem(await t.call('GET', `/status/${mine.id}`, { key: bob }), 404, 'not_found');
  assert.is(((await (await t.call('GET', `/v1/generations/${mine.id}`, { key: alice })).json()) as any).status, 'pending');
});

it('cap on unfinished generations: 429 with Retry-After, free again once one finishes', async ({ t, bob }) => {
  const ids: string[] = [];
  for (let i = 0; i < 2; i++) {
    const res = await t.call('POST', '/v1/generations', { key: bob, body: { prompt: `shield ${i}` } });
    assert.is(res.status, 202);
    ids.push(((await res.json()) as any).id);
  }
  const before = await t.countGenerations();
  const refused = await t.call('POST', '/v1/generations', { key: bob, body: { prompt: 'one too many' } });
  const p = await expectProblem(refused, 429, 'too_many_unfinished');
  assert.is(p.limit, 2);
  assert.ok(Number(refused.headers.get('retry-after')) > 0);
  assert.is(await t.countGenerations(), before);
  await t.call('POST', `/v1/generations/${ids[0]}/cancel`, { key: bob });
  assert.is((await t.call('POST', '/v1/generations', { key: bob, body: { prompt: 'now it fits' } })).status, 202);
});

it('Idempotency-Key: same body → same generation; different body → 422', async ({ t, alice }) => {
  const headers = { 'idempotency-key': 'order-7f3a' };
  const first = await t.call('POST', '/v1/generations', { key: alice, headers, body: { prompt: 'a crown' } });
  const again = await t.call('POST', '/v1/generations', { key: alice, headers, body: { prompt: 'a crown' } });
  assert.is(first.status, 202);
  assert.is(again.status, 202);
  assert.is(again.headers.get('idempotent-replayed'), 'true');
  const a = (await first.json()) as any;
  const b = (await again.json()) as any;
  assert.is(b.id, a.id);
  assert.is(b.params.seed, a.params.seed, 'the picked seed is the recorded one');
  const before = await t.countGenerations();
  const other = await expectProblem(
    await t.call('POST', '/v1/generations', { key: alice, headers, body: { prompt: 'a different crown' } }),
    422,
    'idempotency_key_reused',
  );
  assert.is(other.generation_id, a.id);
  assert.is(await t.countGenerations(), before);
  const bobs = await t.call('POST', '/v1/generations', { key: t.keys.bob!, headers, body: { prompt: 'a crown' } });
  if (bobs.status === 202) assert.is.not(((await bobs.json()) as any).id, a.id, 'keys are per API key');
});

it('Idempotency-Key: 16 concurrent submits of one key and body (sharing statements) make one generation, and all answer with it', async ({ t, alice }) => {
  const headers = { 'idempotency-key': 'burst-51c2' };
  const answers = await Promise.all(Array.from({ length: 16 }, () => t.call('POST', '/v1/generations', { key: alice, headers, body: { prompt: 'a burst' } })));
  assert.equal(answers.map((r) => r.status), Array(16).fill(202));
  const ids = new Set(await Promise.all(answers.map(async (r) => ((await r.json()) as any).id)));
  assert.is(ids.size, 1);
  assert.is(answers.filter((r) => r.headers.get('idempotent-replayed') === 'true').length, 15);
  const rows = await t.gw.db.query('SELECT count(*) AS n FROM generations WHERE idempotency_key = $1', ['burst-51c2']);
  assert.is(Number(rows[0]!.n), 1);
});

it('internal API: token required, transitions answer 409 when they do not apply', async ({ t, alice }) => {
  const g = (await (await t.call('POST', '/v1/generations', { key: alice, body: { prompt: 'boots' } })).json()) as any;
  await expectProblem(await t.call('POST', `/internal/v1/generations/${g.id}/claim`, { body: { runner_id: 'x' } }), 401, 'unauthorized');
  await expectProblem(await t.call('POST', `/internal/v1/generations/${g.id}/claim`, { key: alice, body: { runner_id: 'x' } }), 401, 'unauthorized');
  await expectProblem(await t.runner(`/generations/${g.id}/progress`, { attempt: 1, step: 1, total: 50 }), 409, 'lease_lost');
  assert.is((await t.runner(`/generations/${g.id}/claim`, { runner_id: 'r1' })).status, 200);
  const taken = await t.runner(`/generations/${g.id}/claim`, { runner_id: 'r2' });
  const p = await expectProblem(taken, 409, 'claimed');
  assert.ok(Number(taken.headers.get('retry-after')) > 0);
  assert.type(p.retry_after_s, 'number');
  await expectProblem(await t.runner(`/generations/${g.id}/complete`, { attempt: 2, images: [{ key: 'k' }] }), 409, 'lease_lost');
  await expectProblem(await t.runner(`/generations/${g.id}/complete`, { attempt: 1, images: [] }), 422, 'validation_failed');
  await expectProblem(await t.runner(`/generations/${g.id}/fail`, { attempt: 1, code: 'Bad Code', message: 'x' }), 422, 'validation_failed');
  await expectProblem(await t.runner('/generations/8a0f1c2e-3b4d-4e5f-8a6b-7c8d9e0f1a2b/claim', { runner_id: 'r' }), 404, 'not_found');
  assert.is((await t.runner(`/generations/${g.id}/complete`, { attempt: 1, images: [{ key: 'k' }] })).status, 200);
  const done = await expectProblem(await t.runner(`/generations/${g.id}/claim`, { runner_id: 'r3' }), 409, 'already_finished');
  assert.is(done.status, 409);
});

it('release: a stopping runner gives up its lease and the next claim takes the job at once', async ({ t, alice }) => {
  const g = (await (await t.call('POST', '/v1/generations', { key: alice, body: { prompt: 'belt' } })).json()) as any;
  await expectProblem(await t.runner(`/generations/${g.id}/release`, { attempt: 1 }), 409, 'lease_lost');
  assert.is((await t.runner(`/generations/${g.id}/claim`, { runner_id: 'r1' })).status, 200);
  await expectProblem(await t.runner(`/generations/${g.id}/claim`, { runner_id: 'r2' }), 409, 'claimed');
  await expectProblem(await t.runner(`/generations/${g.id}/release`, { attempt: 0 }), 422, 'validation_failed');
  await expectProblem(await t.runner(`/generations/${g.id}/release`, { attempt: 2 }), 409, 'lease_lost');
  const released = await t.runner(`/generations/${g.id}/release`, { attempt: 1 });
  assert.is(released.status, 200);
  assert.equal(await released.json(), { released: true });
  assert.is(((await (await t.call('GET', `/v1/generations/${g.id}`, { key: alice })).json()) as any).status, 'processing', 'no visible change');
  const again = await t.runner(`/generations/${g.id}/claim`, { runner_id: 'r2' });
  assert.is(again.status, 200);
  assert.is(((await again.json()) as any).attempt, 2);
  await expectProblem(await t.runner(`/generations/${g.id}/progress`, { attempt: 1, step: 1, total: 50 }), 409, 'lease_lost');
});

it('concurrent claims over HTTP: exactly one runner wins', async ({ t, alice }) => {
  const g = (await (await t.call('POST', '/v1/generations', { key: alice, body: { prompt: 'gloves' } })).json()) as any;
  const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => t.runner(`/generations/${g.id}/claim`, { runner_id: `r${i}` })));
  assert.equal(answers.map((r) => r.status).sort(), [200, ...Array(9).fill(409)]);
});

it('images: served to their owner once completed, from the local store', async ({ t, alice, bob }) => {
  const g = (await (await t.call('POST', '/v1/generations', { key: alice, body: { prompt: 'a lamp', num_images: 2 } })).json()) as any;
  await expectProblem(await t.call('GET', `/v1/generations/${g.id}/images/0`, { key: alice }), 404, 'image_not_ready');
  await t.runner(`/generations/${g.id}/claim`, { runner_id: 'r' });
  const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]);
  const stored = await t.gw.images.putImage({ generationId: g.id, index: 0, png, seed: g.params.seed });
  assert.is(stored.key, `generated/${g.id}/0.png`);
  const other = await t.gw.images.putImage({ generationId: g.id, index: 1, png: Buffer.from('second'), seed: g.params.seed });
  await t.runner(`/generations/${g.id}/complete`, { attempt: 1, images: [stored, other] });

  const res = await t.call('GET', `/v1/generations/${g.id}/images/0`, { key: alice });
  assert.is(res.status, 200);
  assert.is(res.headers.get('content-type'), 'image/png');
  assert.ok(Buffer.from(await res.arrayBuffer()).equals(png));
  assert.is(await (await t.call('GET', `/v1/generations/${g.id}/images/1`, { key: alice })).text(), 'second');
  await expectProblem(await t.call('GET', `/v1/generations/${g.id}/images/2`, { key: alice }), 404, 'image_not_found');
  await expectProblem(await t.call('GET', `/v1/generations/${g.id}/images/x`, { key: alice }), 400, 'invalid_id');
  await expectProblem(await t.call('GET', `/v1/generations/${g.id}/images/0`, { key: bob }), 404, 'not_found');
  await expectProblem(await t.call('GET', `/v1/generations/${g.id}/images/0`), 401, 'unauthorized');
});

it('system routes: health, readiness, metrics, OpenAPI, docs', async ({ t }) => {
  assert.equal(await (await t.call('GET', '/healthz')).json(), { status: 'ok' });
  const ready = await t.call('GET', '/readyz');
  assert.is(ready.status, 200);
  assert.equal(await ready.json(), { status: 'ready', database: true, broker: true, api: 'keys: every API request needs a key' });
  const metrics = await (await t.call('GET', '/metrics')).text();
  assert.match(metrics, /itemgen_generations_submitted_total \d+/);
  assert.match(metrics, /itemgen_http_requests_total\{method="POST",route="\/v1\/generations",status="202"\} \d+/);
  assert.match(metrics, /itemgen_broker_connected 1/);
  const doc = (await (await t.call('GET', '/openapi.json')).json()) as any;
  assert.is(doc.openapi, '3.1.0');
  assert.ok(doc.paths['/v1/generations'].post);
  assert.ok(doc.paths['/v1/generations/{id}/events'].get);
  assert.ok(doc.paths['/generate'].post.deprecated);
  assert.not.ok(Object.keys(doc.paths).some((p) => p.startsWith('/internal')), 'internal API is not published');
  assert.not.ok(doc.paths['/update_db/{request_id}'], 'the old public status update is gone');
  const req = doc.components.schemas.GenerationRequest;
  assert.is(req.properties.num_inference_steps.maximum, 150);
  assert.is(req.additionalProperties, false);
  const docs = await t.call('GET', '/docs');
  assert.match(await docs.text(), /swagger-ui-bundle\.js/);
  const bundle = await t.call('GET', '/docs/swagger-ui-bundle.js');
  assert.is(bundle.status, 200);
  assert.ok((await bundle.arrayBuffer()).byteLength > 100_000);
});

it.run();
