// The replaced system's routes, for its existing clients: same paths, bodies and status words
// (spec/seed-api.md). Its public PUT /update_db is deliberately absent: runners report through
// /internal/v1 with a token. Errors are problem+json, whose `detail` field old clients already read.
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { notFound } from '../../core/errors.ts';
import { legacyGenerateSchema, legacyToParams } from '../../core/request.ts';
import { getGeneration } from '../../store/sql/getGeneration.ts';
import type { GatewayDeps, GatewayEnv } from '../deps.ts';
import { baseUrl, requireJson } from '../http.ts';
import { EXAMPLE_ID } from '../examples.ts';
import { legacyStatusSchema, presentLegacy, problemResponse as problem } from '../present.ts';
import { parseIdempotencyKey, submitGeneration } from '../submit.ts';
import { validationHook } from '../validation.ts';

const security = [{ bearer: [] }];

const generateRoute = createRoute({
  method: 'post',
  path: '/generate',
  operationId: 'legacyGenerate',
  summary: 'Submit (compatibility route of the replaced system)',
  deprecated: true,
  tags: ['compatibility'],
  security,
  middleware: [requireJson] as const,
  request: { body: { required: true, content: { 'application/json': { schema: legacyGenerateSchema } } } },
  responses: {
    202: {
      description: 'Accepted',
      content: { 'application/json': { schema: z.object({ request_id: z.uuid() }).openapi('LegacyAccepted', { example: { request_id: EXAMPLE_ID } }) } },
    },
    422: problem('Missing or invalid field'),
  },
});

const statusRoute = createRoute({
  method: 'get',
  path: '/status/{request_id}',
  operationId: 'legacyStatus',
  summary: 'Status (compatibility route of the replaced system)',
  deprecated: true,
  tags: ['compatibility'],
  security,
  request: { params: z.object({ request_id: z.uuid().openapi({ param: { name: 'request_id', in: 'path' }, example: EXAMPLE_ID }) }) },
  responses: {
    200: { description: 'Status; image_url only when Completed', content: { 'application/json': { schema: legacyStatusSchema } } },
    400: problem('Not a UUID'),
    404: problem('Unknown'),
  },
});

export function legacyRoutes(deps: GatewayDeps) {
  const app = new OpenAPIHono<GatewayEnv>({ defaultHook: validationHook });

  app.openapi(generateRoute, async (c) => {
    const idempotencyKey = parseIdempotencyKey(c.req.header('Idempotency-Key'));
    const { generation } = await submitGeneration(
      deps,
      c.get('principal'),
      legacyToParams(c.req.valid('json')),
      idempotencyKey,
    );
    return c.json({ request_id: generation.id }, 202);
  });

  app.openapi(statusRoute, async (c) => {
    const g = await getGeneration(deps.db, c.req.valid('param').request_id, c.get('principal').apiKeyId);
    if (!g) throw notFound('request');
    return c.json(presentLegacy(g, baseUrl(c, deps.settings)), 200);
  });

  return app;
}
