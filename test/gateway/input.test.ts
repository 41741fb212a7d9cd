// Hostile input at the edge: text PostgreSQL cannot store, prototype names, out-of-range numbers
// and unsafe links each get a 4xx problem that names the field, change nothing and log no error.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { recordingLogger } from '../helpers/log.ts';

const log = recordingLogger();
const it = suite<{ t: TestGateway }>('hostile input on PostgreSQL');
it.before(async (ctx) => {
  ctx.t = await startTestGateway({ store: 'postgres', log });
});
it.after(({ t }) => t.stop());
it.after.each(() => {
  const errors = log.at('error');
  log.entries.length = 0;
  assert.equal(errors, [], 'nothing was logged as an error');
});

async function expectProblem(res: Response, status: number, code: string, field?: string) {
  assert.is(res.status, status, `status for ${code}`);
  assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
  const body = (await res.json()) as { code: string; detail: string; errors?: { path: string }[] };
  assert.is(body.code, code);
  if (field) assert.ok(body.errors?.some((e) => e.path === field), `${field} named in ${JSON.stringify(body)}`);
  return body;
}

// Written as JSON escapes, as a client sends them: JSON.stringify keeps lone surrogates escaped.
const UNSTORABLE = ['a \u0000 sword', 'a \ud800 sword', 'a \udfff sword', '\udc00\ud800'];

it('NUL and unpaired surrogates in prompts: 422 naming the field, v1 and /generate alike', async ({ t }) => {
  const before = await t.countGenerations();
  for (const text of UNSTORABLE) {
    for (const field of ['prompt', 'negative_prompt']) {
      const body = { prompt: 'a sword', [field]: text };
      await expectProblem(await t.call('POST', '/v1/generations', { body }), 422, 'validation_failed', field);
      await expectProblem(await t.call('POST', '/generate', { body }), 422, 'validation_failed', field);
    }
  }
  assert.is(await t.countGenerations(), before);
  const paired = await t.call('POST', '/v1/generations', { body: { prompt: 'a sword \ud83d\udde1' } });
  assert.is(paired.status, 202, 'a surrogate pair (an emoji) is ordinary text');
  assert.is(((await paired.json()) as any).params.prompt, 'a sword 🗡');
});

it('/docs/<a name of Object.prototype> is 404, not a 500', async ({ t }) => {
  for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
    await expectProblem(await t.call('GET', `/docs/${name}`), 404, 'route_not_found');
  }
  assert.is((await t.call('GET', '/docs/swagger-ui.css')).status, 200);
});

it('internal API: attempts beyond an integer, unsafe image links, unstorable text: 422, nothing changes', async ({ t }) => {
  const id = ((await (await t.call('POST', '/v1/generations', { body: { prompt: 'a shield' } })).json()) as any).id;
  for (const runner_id of ['r\u0000', 'r\ud800']) {
    await expectProblem(await t.runner(`/generations/${id}/claim`, { runner_id }), 422, 'validation_failed', 'runner_id');
  }
  assert.is((await t.runner(`/generations/${id}/claim`, { runner_id: 'r1' })).status, 200);
  for (const attempt of [2 ** 31, 2 ** 53, 1e300]) {
    await expectProblem(await t.runner(`/generations/${id}/progress`, { attempt, step: 1, total: 50 }), 422, 'validation_failed', 'attempt');
  }
  const key = `generated/${id}/0.png`;
  for (const url of ['javascript:alert(1)', 'data:image/png;base64,AAAA', 'file:///etc/passwd', 'ftp://example.com/0.png']) {
    await expectProblem(await t.runner(`/generations/${id}/complete`, { attempt: 1, images: [{ key, url }] }), 422, 'validation_failed', 'images.0.url');
  }
  await expectProblem(await t.runner(`/generations/${id}/complete`, { attempt: 1, images: [{ key: 'k\u0000' }] }), 422, 'validation_failed', 'images.0.key');
  await expectProblem(await t.runner(`/generations/${id}/fail`, { attempt: 1, code: 'x', message: 'bad \udfff' }), 422, 'validation_failed', 'message');
  const row = (await t.gw.db.query('SELECT status, attempts, images FROM generations WHERE id = $1', [id]))[0]!;
  assert.equal({ status: row.status, attempts: Number(row.attempts), images: row.images }, { status: 'processing', attempts: 1, images: null });
  assert.is((await t.runner(`/generations/${id}/complete`, { attempt: 1, images: [{ key, url: 'https://storage.example/0.png' }] })).status, 200);
});

it('a scheduler\'s own limits are checked at submit: lcm past 50 steps is 422 naming the field and the limit', async ({ t }) => {
  const before = await t.countGenerations();
  for (const route of ['/v1/generations']) {
    const body = await expectProblem(
      await t.call('POST', route, { body: { prompt: 'a ring', scheduler: 'lcm', num_inference_steps: 51 } }),
      422,
      'validation_failed',
      'num_inference_steps',
    );
    assert.match(body.detail, /the lcm scheduler takes at most 50 steps/);
  }
  assert.is(await t.countGenerations(), before);
  const ok = await t.call('POST', '/v1/generations', { body: { prompt: 'a ring', scheduler: 'lcm', num_inference_steps: 50 } });
  assert.is(ok.status, 202);
  const plms = await t.call('POST', '/v1/generations', { body: { prompt: 'a ring', scheduler: 'pndm', num_inference_steps: 150 } });
  assert.equal(((await plms.json()) as any).progress, { step: 0, total: 151 }, 'the total counts UNet evaluations');
});

it.run();
