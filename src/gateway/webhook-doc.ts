// The webhook a submit's `webhook` URL receives, as an OpenAPI 3.1 `webhooks` entry
// (generationEvent), so generated clients and readers know its body, headers and signature.
// Documentation only: delivery is src/webhooks/.
import { z, type RouteConfig } from '@hono/zod-openapi';
import { generationSchema } from './present.ts';

export const generationEventWebhook: RouteConfig = {
  method: 'post',
  path: 'generationEvent',
  operationId: 'generationEvent',
  summary: "A generation's event, POSTed to the `webhook` URL given at submit",
  description: [
    'Sent for the events in the submit\'s `webhook_events_filter` (default `["completed"]`): `start` (claimed by a runner, status ' +
      'processing), `progress` (steps done; coalesced, so a slow receiver gets the latest, not every step) and `completed` ' +
      '(completed, failed or canceled). The body is the generation exactly as GET /v1/generations/{id} answers it; its `status` ' +
      'and `progress` tell which event it is.',
    '',
    'Signed per the Standard Webhooks specification: `webhook-signature` is `v1,` followed by the base64 HMAC-SHA256, under the ' +
      "key's secret (GET /v1/webhooks/default/secret, `whsec_…`), of `{webhook-id}.{webhook-timestamp}.{body}`. Verify it, " +
      "and the timestamp's age, with the `standardwebhooks` package (`new Webhook(secret).verify(body, headers)`) or the " +
      "SDK's `verifyWebhook`.",
    '',
    'Any 2xx answer is a delivery. Network errors, timeouts, 5xx and 429 are retried with exponential backoff and jitter for ' +
      'about 24 hours; other 4xx are not retried. Redirects are not followed; at most 1 KB of the answer is read. Attempts are ' +
      'listed by GET /v1/generations/{id}/webhook-deliveries.',
  ].join('\n'),
  request: {
    headers: z.object({
      'webhook-id': z.string().openapi({ description: 'The event; every retry of it carries the same id (deduplicate on it).', example: 'msg_5b1f0c8e-2f7a-4c3e-9d55-0a9b8c7d6e5f' }),
      'webhook-timestamp': z.string().openapi({ description: 'When it was sent, in seconds since the epoch.', example: '1779268451' }),
      'webhook-signature': z.string().openapi({
        description: 'Space-separated signatures, each `v1,<base64 HMAC-SHA256>` (several while a secret rotates).',
        example: 'v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=',
      }),
    }),
    body: { required: true, content: { 'application/json': { schema: generationSchema } } },
  },
  responses: {
    200: { description: 'Any 2xx: delivered' },
    500: { description: 'Any 5xx or 429 (or no answer): retried later' },
  },
};
