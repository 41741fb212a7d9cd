// /v1/generations: submit, read, list and cancel (their event streams: events.ts).
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { AppError, notFound } from '../../core/errors.ts';
import { COST_UNIT_PIXELS, generationRequestSchema, LIMITS } from '../../core/request.ts';
import { isTerminal, STATUSES } from '../../core/status.ts';
import { storedKeys } from '../../storage/types.ts';
import { cancelGeneration } from '../../store/sql/cancelGeneration.ts';
import { deleteGeneration } from '../../store/sql/deleteGeneration.ts';
import { getGeneration } from '../../store/sql/getGeneration.ts';
import { listGenerations } from '../../store/sql/listGenerations.ts';
import { awaitFinished } from '../await-finished.ts';
import type { GatewayDeps, GatewayEnv } from '../deps.ts';
import { baseUrl, requireJson } from '../http.ts';
import { EXAMPLE_ID, GENERATION_EXAMPLE } from '../examples.ts';
import { generationSchema, presentGeneration, problemResponse as problem } from '../present.ts';
import { MAX_WAIT_SECONDS, preferredWait } from '../prefer.ts';
import { parseIdempotencyKey, submitGeneration } from '../submit.ts';
import { validationHook } from '../validation.ts';
import { WEBHOOK_EVENTS } from '../../webhooks/index.ts';

/** The submit body: the generation's parameters, and where to send its events. */
const submitBodySchema = generationRequestSchema
  .extend({
    webhook: z
      .url({ protocol: /^https?$/, error: 'webhook must be an http(s) URL' })
      .max(2048)
      .optional()
      .describe('URL POSTed the generation (as GET /v1/generations/{id} shows it) at each event, signed per Standard Webhooks with the key of GET /v1/webhooks/default/secret. https only, except for a gateway on loopback; private and metadata addresses are refused.'),
    webhook_events_filter: z
      .array(z.enum(WEBHOOK_EVENTS))
      .min(1)
      .max(WEBHOOK_EVENTS.length)
      .optional()
      .describe('Which events to send: start (claimed by a runner), progress (steps, coalesced), completed (completed, failed or canceled). Default ["completed"].'),
  })
  .meta({ ...generationRequestSchema.meta(), id: 'GenerationRequest' });

const idParam = z.object({ id: z.uuid().openapi({ param: { name: 'id', in: 'path' }, example: EXAMPLE_ID }) });
const security = [{ bearer: [] }];

const submitRoute = createRoute({
  method: 'post',
  path: '/',
  operationId: 'createGeneration',
  summary: 'Submit a generation',
  security,
  middleware: [requireJson] as const,
  request: {
    headers: z.object({
      'idempotency-key': z.string().optional().openapi({ description: 'Same key and body return the same generation.' }),
      prefer: z
        .string()
        .optional()
        .openapi({
          description:
            `\`wait\` or \`wait=N\` (N from 1; above ${MAX_WAIT_SECONDS} counts as ${MAX_WAIT_SECONDS}): hold the answer until the generation is finished ` +
            `(200) or N seconds (${MAX_WAIT_SECONDS} for a bare \`wait\`) passed (202); Preference-Applied tells the wait applied. A held answer ` +
            'counts as one of the key\'s event streams while it waits; when the key holds its most, the answer comes at once (202, no ' +
            'Preference-Applied). Other preferences are ignored.',
          example: 'wait=30',
        }),
    }),
    body: { required: true, content: { 'application/json': { schema: submitBodySchema } } },
  },
  responses: {
    200: {
      description: 'Finished while the answer was held (Prefer: wait): completed, failed or canceled.',
      headers: z.object({ Location: z.string(), 'Preference-Applied': z.string().openapi({ example: 'wait=30' }) }),
      content: { 'application/json': { schema: generationSchema } },
    },
    202: {
      description: 'Accepted; follow Location. With Prefer: wait, not finished within the wait.',
      headers: z.object({ Location: z.string(), 'Preference-Applied': z.string().optional() }),
      content: { 'application/json': { schema: generationSchema } },
    },
    400: problem('Malformed JSON, bad Idempotency-Key or bad Prefer: wait'),
    401: problem('Missing or unknown API key'),
    413: problem('Body too large'),
    415: problem('Not JSON'),
    422: problem('Invalid parameters, or Idempotency-Key reused with another body'),
    429: problem('Too many unfinished generations for this key (see Retry-After)'),
  },
});

const getRoute = createRoute({
  method: 'get',
  path: '/{id}',
  operationId: 'getGeneration',
  summary: 'Status, progress, parameters and results of a generation',
  security,
  request: { params: idParam },
  responses: {
    200: { description: 'The generation', content: { 'application/json': { schema: generationSchema } } },
    400: problem('Not a UUID'),
    404: problem('Unknown, or owned by another key'),
  },
});

const MAX_PAGE = 100;
const listRoute = createRoute({
  method: 'get',
  path: '/',
  operationId: 'listGenerations',
  summary: 'Your generations, newest first',
  security,
  request: {
    query: z.object({
      status: z.enum(STATUSES).optional(),
      limit: z.coerce.number().int().min(1).max(MAX_PAGE).default(20).openapi({ description: `Generations per page, 1 to ${MAX_PAGE}.`, example: 20 }),
      cursor: z
        .string()
        .regex(/^\d{1,16}$/, 'cursor must be a value of next_cursor')
        .optional()
        .openapi({ description: 'The next_cursor of the page before.', example: '1042' }),
    }),
  },
  responses: {
    200: {
      description: 'A page of generations',
      content: {
        'application/json': {
          schema: z
            .object({ data: z.array(generationSchema), next_cursor: z.string().nullable() })
            .openapi({ example: { data: [GENERATION_EXAMPLE], next_cursor: '1042' } }),
        },
      },
    },
    422: problem('Invalid query'),
  },
});

const cancelRoute = createRoute({
  method: 'post',
  path: '/{id}/cancel',
  operationId: 'cancelGeneration',
  summary: 'Cancel a pending or processing generation',
  security,
  request: { params: idParam },
  responses: {
    200: { description: 'Canceled', content: { 'application/json': { schema: generationSchema } } },
    404: problem('Unknown'),
    409: problem('Already finished'),
  },
});

const deleteRoute = createRoute({
  method: 'delete',
  path: '/{id}',
  operationId: 'deleteGeneration',
  summary: 'Delete a finished generation and its images',
  description:
    'Removes the images from storage and the generation from every read (GET, the list, the event streams), and forgets its ' +
    'Idempotency-Key. Only finished generations (completed, failed, canceled): cancel an unfinished one first. ' +
    'Idempotent: deleting a deleted generation answers 204 again.',
  security,
  request: { params: idParam },
  responses: {
    204: { description: 'Deleted (now or before)' },
    400: problem('Not a UUID'),
    404: problem('Unknown, or owned by another key'),
    409: problem('Not finished yet (pending or processing): cancel it first'),
  },
});

/** The submit's limits, with this gateway's numbers. */
function submitDescription(s: GatewayDeps['settings']): string {
  return [
    'Accepts a generation and answers at once with it (202, pending), or with `Prefer: wait` once it is finished.',
    '',
    `**Cost.** A generation costs ceil(width × height / ${COST_UNIT_PIXELS} × UNet evaluations × num_images × (2 when guidance_scale > 1, else 1)) ` +
      `units (UNet evaluations: num_inference_steps, one more with pndm); 512², 50 steps, one image, guided: 400. One generation may cost at most ` +
      `${s.maxGenerationCost} (MAX_GENERATION_COST; more is a 422 \`generation_too_costly\`).`,
    '',
    `**Per key.** Unfinished generations cost at most the key's compute budget together (${s.defaultMaxUnfinishedCost} unless the key has ` +
      `its own; 429 \`compute_budget_exceeded\`), and a key has at most its cap of unfinished generations (${s.defaultMaxUnfinished} unless ` +
      "its own; 429 `too_many_unfinished`); both answer Retry-After." +
      (s.rateLimits.submit ? ` Submits per key: ${s.rateLimits.submit.capacity} per ${s.rateLimits.submit.windowSeconds} s (429 \`rate_limited\`).` : ''),
    '',
    `**Body.** JSON of at most ${s.maxBodyBytes} bytes (413); prompt and negative_prompt at most ${LIMITS.promptChars} characters; width and height ` +
      `${LIMITS.size.min} to ${LIMITS.size.max}, multiples of ${LIMITS.size.multipleOf}; num_images ${LIMITS.images.min} to ${LIMITS.images.max}; ` +
      'num_inference_steps per scheduler as its description says.',
  ].join('\n');
}

export function generationsRoutes(deps: GatewayDeps) {
  const app = new OpenAPIHono<GatewayEnv>({ defaultHook: validationHook });

  app.openapi({ ...submitRoute, description: submitDescription(deps.settings) }, async (c) => {
    const idempotencyKey = parseIdempotencyKey(c.req.header('Idempotency-Key'));
    const { webhook, webhook_events_filter: filter, ...request } = c.req.valid('json');
    if (filter && !webhook) {
      throw new AppError(422, 'validation_failed', 'The request body is invalid: webhook_events_filter: needs a webhook.', {
        errors: [{ path: 'webhook_events_filter', message: 'needs a webhook' }],
      });
    }
    // Deduplicated, in the order events happen, so equal filters hash alike.
    const events = WEBHOOK_EVENTS.filter((e) => (filter ?? ['completed']).includes(e));
    const wait = preferredWait(c.req.header('Prefer'));
    const principal = c.get('principal');
    // Accepted (committed) before any waiting: a wait that runs out loses nothing.
    let { generation, replayed } = await submitGeneration(deps, principal, request, idempotencyKey, webhook ? { url: webhook, events } : undefined);
    c.header('Vary', 'Prefer');
    if (wait !== null) {
      const release = await holdSlot(principal.apiKeyId);
      if (release) {
        try {
          generation = await awaitFinished({
            changes: deps.changes,
            read: () => getGeneration(deps.db, generation.id, principal.apiKeyId),
            current: generation,
            deadline: Date.now() + wait * 1000,
            tickMs: deps.settings.sseKeepAliveMs,
            signal: c.req.raw.signal,
          });
        } finally {
          release();
        }
        c.header('Preference-Applied', `wait=${wait}`);
      }
    }
    const view = presentGeneration(generation, baseUrl(c, deps.settings));
    c.header('Location', view.links.self);
    if (replayed) c.header('Idempotent-Replayed', 'true');
    // 200 only answers a wait: without Prefer, a submit (its replays included) is 202 as it always was.
    return wait !== null && isTerminal(generation.status) ? c.json(view, 200) : c.json(view, 202);
  });

  /** A held answer is like an event stream: it takes one of the key's slots, or (all held) none, and the answer comes at once. */
  const holdSlot = async (apiKeyId: string) => {
    try {
      return await deps.streamSlots.open(apiKeyId);
    } catch (err) {
      if (err instanceof AppError && err.code === 'too_many_streams') return null;
      throw err;
    }
  };

  app.openapi(getRoute, async (c) => {
    const g = await getGeneration(deps.db, c.req.valid('param').id, c.get('principal').apiKeyId);
    if (!g) throw notFound();
    return c.json(presentGeneration(g, baseUrl(c, deps.settings)), 200);
  });

  app.openapi(listRoute, async (c) => {
    const q = c.req.valid('query');
    const rows = await listGenerations(deps.db, {
      apiKeyId: c.get('principal').apiKeyId,
      status: q.status,
      limit: q.limit + 1,
      beforeSeq: q.cursor === undefined ? undefined : Number(q.cursor),
    });
    const page = rows.slice(0, q.limit);
    const base = baseUrl(c, deps.settings);
    return c.json(
      {
        data: page.map((g) => presentGeneration(g, base)),
        next_cursor: rows.length > q.limit ? String(page[page.length - 1]!.seq) : null,
      },
      200,
    );
  });

  app.openapi(cancelRoute, async (c) => {
    const { id } = c.req.valid('param');
    const apiKeyId = c.get('principal').apiKeyId;
    const canceled = await cancelGeneration(deps.db, id, apiKeyId);
    if (canceled) return c.json(presentGeneration(canceled, baseUrl(c, deps.settings)), 200);
    const current = await getGeneration(deps.db, id, apiKeyId);
    if (!current) throw notFound();
    throw new AppError(409, 'already_finished', `The generation is already ${current.status}.`, { generation_status: current.status });
  });

  app.openapi(deleteRoute, async (c) => {
    const { id } = c.req.valid('param');
    const result = await deleteGeneration(deps.db, id, c.get('principal').apiKeyId);
    if (result.outcome === 'missing') throw notFound();
    if (result.outcome === 'unfinished') {
      throw new AppError(
        409,
        'not_finished',
        `The generation is ${result.status}; cancel it first (POST /v1/generations/${id}/cancel), then delete it.`,
        { generation_status: result.status },
      );
    }
    // After the row is hidden: a crash here leaves images of a hidden row, which the retention sweep removes.
    await deps.images.delete(storedKeys(result.images.map((i) => i.key)));
    return c.body(null, 204);
  });

  return app;
}
