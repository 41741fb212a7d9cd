// Webhooks as the client sees them: the key's signing secret, the attempts at a generation's
// messages, and sending one again (the deliverer is src/webhooks/).
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { AppError, notFound } from '../../core/errors.ts';
import { ensureWebhookSecret } from '../../store/sql/ensureWebhookSecret.ts';
import { getGeneration } from '../../store/sql/getGeneration.ts';
import { listWebhookDeliveries } from '../../store/sql/listWebhookDeliveries.ts';
import { redeliverWebhookMessage } from '../../store/sql/redeliverWebhookMessage.ts';
import { newWebhookSecret, WEBHOOK_EVENTS } from '../../webhooks/index.ts';
import type { GatewayDeps, GatewayEnv } from '../deps.ts';
import { problemResponse as problem } from '../present.ts';
import { validationHook } from '../validation.ts';
import { EXAMPLE_ID } from '../examples.ts';

const security = [{ bearer: [] }];
const MAX_PAGE = 100;

const secretRoute = createRoute({
  method: 'get',
  path: '/webhooks/default/secret',
  operationId: 'getWebhookSecret',
  summary: "This API key's webhook signing secret",
  description:
    'Every webhook of this key is signed with it per Standard Webhooks: `webhook-signature` is `v1,` + base64 HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}.{body}` keyed with the base64-decoded part after `whsec_`.',
  security,
  responses: {
    200: {
      description: 'The secret',
      content: { 'application/json': { schema: z.object({ key: z.string().openapi({ example: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' }) }) } },
    },
    401: problem('Missing or unknown API key'),
  },
});

const deliverySchema = z
  .object({
    id: z.uuid(),
    webhook_id: z.string().describe('The message\'s webhook-id header, the same for each attempt at it.'),
    event: z.enum(WEBHOOK_EVENTS),
    url: z.string(),
    attempt: z.number().int(),
    attempted_at: z.iso.datetime(),
    status_code: z.number().int().nullable().describe('The answer\'s status; null when none came (refused, network error, timeout).'),
    duration_ms: z.number().int(),
    error: z.string().nullable(),
    will_retry: z.boolean(),
  })
  .openapi('WebhookDelivery');

const params = z.object({ id: z.uuid().openapi({ param: { name: 'id', in: 'path' }, example: EXAMPLE_ID }) });

const listRoute = createRoute({
  method: 'get',
  path: '/generations/{id}/webhook-deliveries',
  operationId: 'listWebhookDeliveries',
  summary: "Attempts at this generation's webhook messages, newest first",
  security,
  request: {
    params,
    query: z.object({
      limit: z.coerce.number().int().min(1).max(MAX_PAGE).default(20),
      cursor: z.uuid().optional().openapi({ description: 'A value of next_cursor.' }),
    }),
  },
  responses: {
    200: {
      description: 'A page of attempts',
      content: { 'application/json': { schema: z.object({ data: z.array(deliverySchema), next_cursor: z.string().nullable() }) } },
    },
    400: problem('Not a UUID'),
    404: problem('Unknown, or owned by another key'),
    422: problem('Invalid query'),
  },
});

const redeliverRoute = createRoute({
  method: 'post',
  path: '/generations/{id}/webhook-deliveries/{delivery}/redeliver',
  operationId: 'redeliverWebhook',
  summary: 'Send the message of an attempt again',
  description: 'Queued now, with the same webhook-id; the body is the generation as it is when sent.',
  security,
  request: { params: params.extend({ delivery: z.uuid().openapi({ param: { name: 'delivery', in: 'path' }, example: '3c7e1a9b-5d2f-4b8e-a6c1-0f9d8e7b6a5c' }) }) },
  responses: {
    202: { description: 'Queued', content: { 'application/json': { schema: z.object({ webhook_id: z.string() }) } } },
    400: problem('Not a UUID'),
    404: problem('Unknown generation or attempt, or owned by another key'),
  },
});

export function webhookRoutes(deps: GatewayDeps) {
  const app = new OpenAPIHono<GatewayEnv>({ defaultHook: validationHook });

  app.openapi(secretRoute, async (c) => {
    const key = await ensureWebhookSecret(deps.db, c.get('principal').apiKeyId, newWebhookSecret());
    if (!key) throw new AppError(401, 'unauthorized', 'This API key no longer exists.');
    return c.json({ key }, 200);
  });

  app.openapi(listRoute, async (c) => {
    const { id } = c.req.valid('param');
    const q = c.req.valid('query');
    if (!(await getGeneration(deps.db, id, c.get('principal').apiKeyId))) throw notFound();
    const rows = await listWebhookDeliveries(deps.db, id, q.limit + 1, q.cursor);
    const page = rows.slice(0, q.limit);
    return c.json(
      {
        data: page.map((d) => ({
          id: d.id,
          webhook_id: d.messageId,
          event: d.event,
          url: d.url,
          attempt: d.attempt,
          attempted_at: d.attemptedAt.toISOString(),
          status_code: d.statusCode,
          duration_ms: d.durationMs,
          error: d.error,
          will_retry: d.willRetry,
        })),
        next_cursor: rows.length > q.limit ? page[page.length - 1]!.id : null,
      },
      200,
    );
  });

  app.openapi(redeliverRoute, async (c) => {
    const { id, delivery } = c.req.valid('param');
    if (!(await getGeneration(deps.db, id, c.get('principal').apiKeyId))) throw notFound();
    const messageId = await redeliverWebhookMessage(deps.db, id, delivery);
    if (!messageId) throw notFound('webhook delivery');
    return c.json({ webhook_id: messageId }, 202);
  });

  return app;
}

