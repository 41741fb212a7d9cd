// Fuzzing every operation of GET /openapi.json over HTTP, on real PostgreSQL and RabbitMQ: requests
// derived from the operations' schemas (valid values, boundary values, wrong types, missing and
// extra fields, hostile strings, malformed bodies, with and without a key) must never get a 5xx,
// and every 4xx must be problem+json with type, title, status, code and detail. The seed is fixed
// so `npm test` runs the same requests each time; FUZZ_SEED and FUZZ_RUNS (runs per operation)
// override it to explore (operation i of the document runs with seed FUZZ_SEED + i, the seed a
// failure prints). A failure names the operation, fast-check's counterexample (the request as
// sent, replayable as it is) and the answer.
import fc from 'fast-check';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { contractIssues, describe, send } from '../helpers/http-contract.ts';
import { RUNNER_TOKEN, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { operations, requestArb, type FuzzRequest, type OpenApiDocument, type Operation } from '../helpers/openapi-arbitraries.ts';
import { submit } from '../helpers/submit.ts';

const SEED = Number(process.env.FUZZ_SEED ?? 20_260_520);
const RUNS_KEYS = Number(process.env.FUZZ_RUNS ?? 300);
const RUNS_OPEN = Math.ceil(RUNS_KEYS / 4);

async function openapi(t: TestGateway): Promise<OpenApiDocument> {
  const res = await t.call('GET', '/openapi.json');
  assert.is(res.status, 200);
  return (await res.json()) as OpenApiDocument;
}

/** One property per operation; every operation runs even when an earlier one fails, and the failures are reported together. */
async function fuzzOperations(t: TestGateway, doc: OpenApiDocument, runs: number, options: Parameters<typeof requestArb>[2]) {
  const failures: string[] = [];
  for (const [i, op] of operations(doc).entries()) {
    const details = await fc.check(
      fc.asyncProperty(requestArb(doc, op, options), async (req) => {
        const outcome = await send(t.url, req);
        const issues = contractIssues(req, outcome);
        if (issues.length) throw new Error(describe(t.url, req, outcome, issues));
      }),
      { seed: SEED + i, numRuns: runs },
    );
    if (details.failed) {
      const report = (fc.defaultReportMessage(details) ?? '').replace(/\n+Hint:.*$/s, '');
      const error = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
      failures.push(`${label(op)}: ${report}\nGot: ${error}`);
    }
  }
  if (failures.length) fail(`${failures.length} operation(s) broke the error contract\n\n${failures.join('\n\n')}`);
}

const label = (op: Operation) => `${op.method} ${op.path}`;

/** Fails with `message` alone: uvu would print a multi-line message twice (again as the stack, with every backslash turned into a slash). */
function fail(message: string): never {
  const err = new Error(message);
  err.stack = 'Error';
  throw err;
}

// -----------------------------------------------------------------------------------------------

type Ctx = { t: TestGateway; doc: OpenApiDocument; alice: string; bob: string; known: string[] };
const withKeys = suite<Ctx>('fuzz: every /openapi.json operation, API keys on (PostgreSQL + RabbitMQ)');

withKeys.before(async (ctx) => {
  ctx.t = await startTestGateway({
    store: 'postgres',
    broker: 'rabbitmq',
    keys: [{ name: 'alice', maxUnfinished: 1_000_000 }, { name: 'bob', maxUnfinished: 2 }],
  });
  ctx.alice = ctx.t.keys.alice!;
  ctx.bob = ctx.t.keys.bob!;
  ctx.doc = await openapi(ctx.t);
  // Ids that exist, so generated requests also reach found generations: pending, completed with
  // an image in the local store, and one of another key.
  const pending = await submit(ctx.t, { prompt: 'fuzz: pending', num_images: 1 }, ctx.alice);
  const completed = await submit(ctx.t, { prompt: 'fuzz: completed', num_images: 1 }, ctx.alice);
  const claim = await ctx.t.runner(`/generations/${completed}/claim`, { runner_id: 'fuzz' });
  assert.is(claim.status, 200);
  const image = await ctx.t.gw.images.putImage({ generationId: completed, index: 0, png: Buffer.from('png'), seed: 1 });
  assert.is((await ctx.t.runner(`/generations/${completed}/complete`, { attempt: 1, images: [image] })).status, 200);
  const bobs = await submit(ctx.t, { prompt: 'fuzz: of another key', num_images: 1 }, ctx.bob);
  ctx.known = [pending, completed, bobs];
});
withKeys.after(({ t }) => t.stop());

withKeys('the document lists the operations, the compatibility routes included', ({ doc }) => {
  const ops = operations(doc).map(label);
  assert.ok(ops.length >= 8, ops.join(', '));
  for (const op of ['POST /v1/generations', 'GET /v1/generations/{id}', 'POST /generate', 'GET /status/{request_id}']) {
    assert.ok(ops.includes(op), `${op} in ${ops.join(', ')}`);
  }
});

withKeys('every operation: no 5xx, every 4xx problem+json (with a key, another key, a wrong key, none)', async ({ t, doc, alice, bob, known }) => {
  const auth = fc.oneof(
    { weight: 10, arbitrary: fc.constant(`Bearer ${alice}`) },
    { weight: 2, arbitrary: fc.constant(`Bearer ${bob}`) },
    { weight: 1, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary-ascii', minLength: 1, maxLength: 40 }).map((k) => `Bearer igk_${k.replace(/[^\x21-\x7e]/g, 'x')}`) },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        'Bearer',
        'Bearer ',
        'Basic YWxpY2U6cw==',
        `bearer ${alice}`,
        `Bearer ${alice} x`,
        `Bearer  ${alice}`,
        `Bearer ${alice}\u00e9`,
        `Bearer ${'a'.repeat(600)}`,
        `Bearer ${RUNNER_TOKEN}`,
        'Bearer __proto__',
        'Bearer constructor',
        `${alice}`,
      ),
    },
  );
  await fuzzOperations(t, doc, RUNS_KEYS, { auth, known: { uuid: known } });
});

withKeys('routes outside the document: docs assets, system routes, lookalike names', async ({ t, alice }) => {
  const requests: FuzzRequest[] = [
    ...['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf', 'swagger-ui.css', 'swagger-ui-bundle.js', 'index.html', '%2e%2e%2fpackage.json', '..%2F..%2Fpackage.json', '%00', '%ZZ', 'swagger-ui.css%00']
      .map((asset) => ({ method: 'GET', path: `/docs/${asset}`, headers: {}, note: 'docs asset' })),
    ...['/docs', '/docs/', '/healthz', '/readyz', '/metrics', '/openapi.json', '/openapi.json/', '/', '/v1', '/v1/', '/constructor', '/__proto__', '/v1/generations/__proto__', '/v1/__proto__/x']
      .map((path) => ({ method: 'GET', path, headers: { authorization: `Bearer ${alice}` }, note: 'outside the document' })),
    { method: 'DELETE', path: '/openapi.json', headers: {}, note: 'wrong method' },
    { method: 'POST', path: '/docs/constructor', headers: {}, note: 'wrong method' },
  ];
  const failures: string[] = [];
  for (const req of requests) {
    const outcome = await send(t.url, req);
    const issues = contractIssues(req, outcome);
    if (issues.length) failures.push(describe(t.url, req, outcome, issues));
  }
  if (failures.length) fail(`${failures.length} request(s) broke the error contract\n\n${failures.join('\n\n')}`);
  const css = await send(t.url, { method: 'GET', path: '/docs/swagger-ui.css', headers: {}, note: '' });
  assert.ok(css.kind === 'response' && css.status === 200 && /^text\/css/.test(css.headers['content-type'] ?? ''), 'swagger-ui.css is served');
});

withKeys.run();

// -----------------------------------------------------------------------------------------------

const open = suite<{ t: TestGateway; doc: OpenApiDocument; known: string[] }>('fuzz: every /openapi.json operation, open mode (PostgreSQL + in-process queue)');

open.before(async (ctx) => {
  ctx.t = await startTestGateway({ store: 'postgres', broker: 'memory' });
  ctx.doc = await openapi(ctx.t);
  ctx.known = [await submit(ctx.t, { prompt: 'fuzz: anonymous', num_images: 1 })];
});
open.after(({ t }) => t.stop());

open('every operation: no 5xx, every 4xx problem+json (anonymous, or a key the open gateway does not know)', async ({ t, doc, known }) => {
  const auth = fc.oneof(
    { weight: 8, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: fc.constantFrom('Bearer igk_unknown', 'Bearer', 'Basic YWxpY2U6cw==', `Bearer ${RUNNER_TOKEN}`) },
  );
  await fuzzOperations(t, doc, RUNS_OPEN, { auth, known: { uuid: known } });
});

open.run();
