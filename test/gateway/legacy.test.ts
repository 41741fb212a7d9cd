// The replaced system's routes keep their exact shapes (spec/seed-api.md).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';

const it = suite<{ t: TestGateway; key: string }>('compatibility routes');
it.before(async (ctx) => {
  ctx.t = await startTestGateway({ store: 'postgres', keys: [{ name: 'old-client' }] });
  ctx.key = ctx.t.keys['old-client']!;
});
it.after(({ t }) => t.stop());

it('POST /generate → 202 {request_id}, with the old defaults', async ({ t, key }) => {
  const res = await t.call('POST', '/generate', { key, body: { prompt: 'tsuki_advtr, a shield' } });
  assert.is(res.status, 202);
  const body = (await res.json()) as any;
  assert.equal(Object.keys(body), ['request_id']);
  const g = (await (await t.call('GET', `/v1/generations/${body.request_id}`, { key })).json()) as any;
  assert.equal(g.params, {
    prompt: 'tsuki_advtr, a shield',
    negative_prompt: '',
    num_inference_steps: 50,
    guidance_scale: 7.5,
    seed: 50,
    width: 512,
    height: 512,
    scheduler: 'ddim',
    num_images: 1,
  });
});

it('GET /status/{id}: status words of the old system; image_url only when Completed', async ({ t, key }) => {
  const { request_id: id } = (await (await t.call('POST', '/generate', { key, body: { prompt: 'an amulet', seed: 9, num_inference_steps: 2 } })).json()) as any;
  const status = async () => (await (await t.call('GET', `/status/${id}`, { key })).json()) as any;
  assert.equal(await status(), { request_id: id, status: 'Pending' });
  await t.runner(`/generations/${id}/claim`, { runner_id: 'r' });
  assert.equal(await status(), { request_id: id, status: 'Processing' });
  await t.runner(`/generations/${id}/complete`, { attempt: 1, images: [{ key: `generated/${id}/0.png` }] });
  assert.equal(await status(), { request_id: id, status: 'Completed', image_url: `${t.url}/v1/generations/${id}/images/0` });

  const other = (await (await t.call('POST', '/generate', { key, body: { prompt: 'a cape' } })).json()) as any;
  await t.call('POST', `/v1/generations/${other.request_id}/cancel`, { key });
  assert.is(((await (await t.call('GET', `/status/${other.request_id}`, { key })).json()) as any).status, 'Canceled');
  const third = (await (await t.call('POST', '/generate', { key, body: { prompt: 'a belt' } })).json()) as any;
  await t.runner(`/generations/${third.request_id}/claim`, { runner_id: 'r' });
  await t.runner(`/generations/${third.request_id}/fail`, { attempt: 1, code: 'x', message: 'y' });
  assert.equal(await (await t.call('GET', `/status/${third.request_id}`, { key })).json(), { request_id: third.request_id, status: 'Failed' });
});

it('errors as the old system answered them: 422 missing field, 400 not a UUID, 404 unknown', async ({ t, key }) => {
  const before = await t.countGenerations();
  const missing = await t.call('POST', '/generate', { key, body: { negative_prompt: 'blurry' } });
  assert.is(missing.status, 422);
  assert.type(((await missing.json()) as any).detail, 'string');
  assert.is((await t.call('POST', '/generate', { key, body: { prompt: 'x', num_inference_steps: 100000 } })).status, 422);
  assert.is((await t.call('POST', '/generate', { key, body: { prompt: 'x', guidance_scale: 'a lot' } })).status, 422);
  assert.is(await t.countGenerations(), before);
  const bad = await t.call('GET', '/status/12345', { key });
  assert.is(bad.status, 400);
  assert.is(((await bad.json()) as any).code, 'invalid_id');
  assert.is((await t.call('GET', '/status/8a0f1c2e-3b4d-4e5f-8a6b-7c8d9e0f1a2b', { key })).status, 404);
});

it('the old public status-update route is not offered', async ({ t, key }) => {
  const { request_id: id } = (await (await t.call('POST', '/generate', { key, body: { prompt: 'a torch' } })).json()) as any;
  for (const k of [undefined, key]) {
    const res = await t.call('PUT', `/update_db/${id}`, { key: k, body: { status: 'Completed', image_url: 'https://evil.example/x.png' } });
    assert.is(res.status, 404);
  }
  assert.equal(await (await t.call('GET', `/status/${id}`, { key })).json(), { request_id: id, status: 'Pending' });
});

it('the compatibility routes need a key like the rest', async ({ t }) => {
  assert.is((await t.call('POST', '/generate', { body: { prompt: 'x' } })).status, 401);
  assert.is((await t.call('GET', '/status/8a0f1c2e-3b4d-4e5f-8a6b-7c8d9e0f1a2b')).status, 401);
});

it.run();
