// /openapi.json as client generators read it: an operationId on every operation, realistic
// examples that hold to their schemas, the limits stated, the SSE event types and the webhook
// (payload, headers, signature) documented.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { generationParamsSchema, generationRequestSchema, SCHEDULER_LIMITS } from '../../src/core/request.ts';
import { EVENT_STREAM_EXAMPLE, GENERATION_EXAMPLE, PROBLEM_EXAMPLE, PROCESSING_EXAMPLE } from '../../src/gateway/examples.ts';
import { generationSchema, legacyStatusSchema, problemSchema } from '../../src/gateway/present.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';

type Doc = { paths: Record<string, Record<string, any>>; webhooks?: Record<string, Record<string, any>>; components: { schemas: Record<string, any> } };
const MAX_COST = 5120;

const it = suite<{ t: TestGateway; doc: Doc }>('OpenAPI document');
it.before(async (ctx) => {
  ctx.t = await startTestGateway({ store: 'pglite', broker: 'memory', env: { MAX_GENERATION_COST: String(MAX_COST) } });
  const res = await ctx.t.call('GET', '/openapi.json');
  assert.is(res.status, 200);
  ctx.doc = (await res.json()) as Doc;
});
it.after(({ t }) => t.stop());

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];
const operationsOf = (paths: Record<string, Record<string, any>>) =>
  Object.entries(paths).flatMap(([path, item]) => METHODS.filter((m) => item[m]).map((m) => ({ label: `${m.toUpperCase()} ${path}`, op: item[m] })));

/** Whether `node` (following $refs into the components) holds an `example` or `examples` anywhere. */
function hasExample(doc: Doc, node: unknown, seen = new Set<string>()): boolean {
  if (!node || typeof node !== 'object') return false;
  if (Array.isArray(node)) return node.some((n) => hasExample(doc, n, seen));
  const o = node as Record<string, unknown>;
  if ('example' in o || 'examples' in o) return true;
  if (typeof o.$ref === 'string') {
    if (seen.has(o.$ref)) return false;
    seen.add(o.$ref);
    const name = o.$ref.replace('#/components/schemas/', '');
    return hasExample(doc, doc.components.schemas[name], seen);
  }
  return Object.values(o).some((v) => hasExample(doc, v, seen));
}

it('every operation (routes and webhooks) has an operationId, each a different one; the SDK\'s names are there', ({ doc }) => {
  const ops = [...operationsOf(doc.paths), ...operationsOf(doc.webhooks ?? {})];
  const missing = ops.filter(({ op }) => typeof op.operationId !== 'string' || !/^[a-z][A-Za-z]+$/.test(op.operationId));
  assert.equal(missing.map((o) => o.label), []);
  const ids = ops.map(({ op }) => op.operationId as string);
  assert.is(new Set(ids).size, ids.length, `duplicates in ${ids.join(', ')}`);
  for (const id of ['createGeneration', 'getGeneration', 'listGenerations', 'cancelGeneration', 'deleteGeneration', 'streamGenerationEvents', 'streamEvents', 'getImage', 'legacyGenerate', 'legacyStatus', 'getHealth', 'getReadiness', 'getMetrics', 'getOpenApi', 'getDocs', 'generationEvent']) {
    assert.ok(ids.includes(id), id);
  }
});

it('every route has an example in its request (parameters or body) or its success response', ({ doc }) => {
  const without = operationsOf(doc.paths).filter(({ op }) => {
    const success = Object.entries(op.responses ?? {}).filter(([status]) => /^2/.test(status)).map(([, r]) => r);
    return !hasExample(doc, [op.parameters, op.requestBody, success]);
  });
  assert.equal(without.map((o) => o.label), []);
});

it('the examples hold to their schemas, and are what the document shows', ({ doc }) => {
  const s = doc.components.schemas;
  generationRequestSchema.parse(s.GenerationRequest.example);
  generationParamsSchema.parse(s.GenerationRequest.example);
  assert.equal(s.Generation.example, GENERATION_EXAMPLE);
  generationSchema.parse(GENERATION_EXAMPLE);
  generationSchema.parse(JSON.parse(JSON.stringify(PROCESSING_EXAMPLE)));
  problemSchema.parse(s.Problem.example);
  assert.equal(s.Problem.example, PROBLEM_EXAMPLE);
  legacyStatusSchema.parse(s.LegacyStatus.example);
  assert.equal(GENERATION_EXAMPLE.params, s.GenerationRequest.example);
  // The event stream example: every `data` of a status or progress event is a generation; a preview is {id, step, url}.
  const events = EVENT_STREAM_EXAMPLE.split('\n\n').map((block) => Object.fromEntries(block.split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)])));
  assert.equal(events.map((e) => e.event), ['status', 'progress', 'preview', 'status']);
  for (const e of events) {
    if (e.event === 'preview') assert.equal(Object.keys(JSON.parse(e.data!)), ['id', 'step', 'url']);
    else generationSchema.parse(JSON.parse(e.data!));
  }
});

it('the limits are stated: size multiple of 8, steps per scheduler, the cost formula and this gateway\'s cost cap', ({ doc }) => {
  const req = doc.components.schemas.GenerationRequest.properties;
  assert.is(req.width.multipleOf, 8);
  assert.is(req.height.multipleOf, 8);
  assert.match(req.num_inference_steps.description, `lcm ${SCHEDULER_LIMITS.lcm.maxSteps}`);
  assert.match(req.scheduler.description, `lcm ${SCHEDULER_LIMITS.lcm.maxSteps}`);
  const submit = doc.paths['/v1/generations']!.post;
  assert.match(submit.description, `at most ${MAX_COST} (MAX_GENERATION_COST`);
  assert.match(submit.description, /width × height \/ 65536 × UNet evaluations × num_images/);
  assert.ok(submit.parameters.some((p: any) => p.name === 'prefer' && p.in === 'header'), 'Prefer: wait is documented');
  assert.ok(submit.responses['200'].headers['Preference-Applied']);
  assert.is(doc.paths['/v1/generations']!.get.parameters.find((p: any) => p.name === 'limit').schema.maximum, 100);
});

it('the SSE event types are documented on both streams, preview included', ({ doc }) => {
  for (const path of ['/v1/generations/{id}/events', '/v1/events']) {
    const op = doc.paths[path]!.get;
    for (const type of ['`status`', '`progress`', '`preview`']) assert.ok(op.description.includes(type), `${path}: ${type}`);
    assert.match(op.description, /data:image\/png;base64/);
    assert.type(op.responses['200'].content['text/event-stream'].schema.example, 'string');
  }
});

it('webhooks.generationEvent: the Generation as body, the three Standard Webhooks headers, the events and how to verify', ({ doc }) => {
  const hook = doc.webhooks?.generationEvent?.post;
  assert.ok(hook, 'webhooks.generationEvent.post');
  assert.is(hook.requestBody.content['application/json'].schema.$ref, '#/components/schemas/Generation');
  const headers = Object.fromEntries(hook.parameters.filter((p: any) => p.in === 'header').map((p: any) => [p.name, p]));
  assert.equal(Object.keys(headers).sort(), ['webhook-id', 'webhook-signature', 'webhook-timestamp']);
  for (const h of Object.values(headers) as any[]) assert.ok(h.required, `${h.name} is required`);
  assert.match(headers['webhook-signature'].description, 'v1,<base64 HMAC-SHA256>');
  for (const word of ['`start`', '`progress`', '`completed`', 'standardwebhooks']) assert.ok(hook.description.includes(word), word);
});

it.run();
