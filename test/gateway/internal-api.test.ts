// The internal API's one contract (src/core/internal-api.ts) seen from both ends: the runner's
// client talks to a real gateway, every body the gateway answers with is parsed with the
// contract's schema for its route (200) or its 409, and the client reads each refusal as the code
// the contract names. A field the two sides spell differently fails here even where the type
// check cannot see it (the wire).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { conflictProblem, CONFLICT_CODES, internalApi, type InternalOperation } from '../../src/core/internal-api.ts';
import { createGatewayClient, type GatewayClient } from '../../src/runner/gateway-client.ts';
import { RUNNER_TOKEN, startTestGateway, type TestGateway } from '../helpers/gateway.ts';

interface Answer {
  operation: InternalOperation;
  status: number;
  body: unknown;
}

const it = suite<{ t: TestGateway; answers: Answer[]; client: GatewayClient }>('internal API contract, client against gateway');

it.before(async (ctx) => {
  ctx.t = await startTestGateway({ store: 'pglite', broker: 'memory' });
  ctx.answers = [];
  // Records what the gateway really sent, as the client received it.
  const recording: typeof fetch = async (input, init) => {
    const res = await fetch(input, init);
    const operation = (String(input).includes('/internal/v1/models/') ? 'registerModel' : String(input).split('/').pop()) as InternalOperation;
    ctx.answers.push({ operation, status: res.status, body: await res.clone().json() });
    return res;
  };
  const retry = { attempts: 1, baseDelayMs: 1, maxDelayMs: 1, maxElapsedMs: 1000 };
  ctx.client = createGatewayClient({ baseUrl: ctx.t.url, token: RUNNER_TOKEN, timeoutMs: 5000, retry, fetch: recording });
});

it.after(({ t }) => t.stop());

const submit = async (t: TestGateway) => {
  const res = await t.call('POST', '/v1/generations', { body: { prompt: 'a contract', width: 256, height: 256, num_inference_steps: 2 } });
  assert.is(res.status, 202);
  return ((await res.json()) as { id: string }).id;
};

it('every route: the client’s body is taken, the answer parses with the contract, and each 409 code comes back as itself', async ({ t, client, answers }) => {
  const done = await submit(t);
  const claimed = await client.claim(done, 'r1');
  assert.ok(claimed.ok);
  assert.is(claimed.claim.id, done);
  assert.is(claimed.claim.attempt, 1);
  assert.equal(await client.progress(done, 1, 1, 2), { ok: true });
  assert.equal(await client.complete(done, 1, [{ key: `generated/${done}/0.png`, url: 'https://storage.example/0.png' }]), { ok: true });
  const finished = await client.claim(done, 'r2');
  assert.is(!finished.ok && finished.code, 'already_finished');

  const failed = await submit(t);
  assert.ok((await client.claim(failed, 'r1')).ok);
  const held = await client.claim(failed, 'r2');
  assert.ok(!held.ok && held.code === 'claimed' && held.retryAfterMs >= 1000, JSON.stringify(held));
  const stale = await client.progress(failed, 2, 1, 2);
  assert.is(!stale.ok && stale.code, 'lease_lost');
  assert.equal(await client.fail(failed, 1, 'generation_failed', 'the model gave up'), { ok: true });

  const released = await submit(t);
  assert.ok((await client.claim(released, 'r1')).ok);
  assert.equal(await client.release(released, 1), { ok: true });
  assert.is((await t.call('POST', `/v1/generations/${released}/cancel`)).status, 200);
  const canceled = await client.claim(released, 'r2');
  assert.is(!canceled.ok && canceled.code, 'canceled');

  const model = { name: 'tiny', hash: 'a'.repeat(64), execution_provider: 'cpu', default_scheduler: 'ddim' as const, default_negative_prompt: 'blurry', prompt_prefix: 'tsuki_advtr, ' };
  assert.equal(await client.registerModel(model), { ok: true });

  const ok = new Set<InternalOperation>();
  const codes = new Set<string>();
  for (const a of answers) {
    if (a.status === 200) {
      const parsed = internalApi[a.operation].answer.safeParse(a.body);
      assert.ok(parsed.success, `${a.operation} 200: ${JSON.stringify(a.body)}`);
      ok.add(a.operation);
    } else {
      assert.is(a.status, 409, `${a.operation}: ${JSON.stringify(a.body)}`);
      const parsed = conflictProblem.safeParse(a.body);
      assert.ok(parsed.success, `${a.operation} 409: ${JSON.stringify(a.body)}`);
      codes.add(parsed.data.code);
    }
  }
  assert.equal([...ok].sort(), Object.keys(internalApi).sort(), 'a 200 of every route was checked');
  assert.equal([...codes].sort(), [...CONFLICT_CODES].sort(), 'a 409 of every code was checked');
});

it.run();
