// Verifying a webhook the gateway sent (Standard Webhooks: webhook-id, webhook-timestamp and
// webhook-signature over the raw body). Works in browsers and edge runtimes too: the
// standardwebhooks package is pure JavaScript.
import { Webhook } from 'standardwebhooks';
import { ItemgenError } from './errors.ts';
import type { Generation } from './types.ts';

/** Request headers as Fetch (Headers), Node (IncomingHttpHeaders) or a plain object give them. */
export type WebhookHeaders = Headers | Record<string, string | string[] | undefined>;

/**
 * The generation a webhook carries, once its signature checks out with `secret` (the `whsec_…`
 * key of GET /v1/webhooks/default/secret) and its timestamp is within five minutes. `body` must be
 * the raw bytes or text as received, not re-serialized JSON. Throws an ItemgenError
 * (`webhook_invalid`, status 0) otherwise.
 */
export function verifyWebhook(secret: string, headers: WebhookHeaders, body: string | Uint8Array): Generation {
  const wanted = ['webhook-id', 'webhook-timestamp', 'webhook-signature'] as const;
  const flat: Record<string, string> = {};
  for (const name of wanted) {
    const v = headers instanceof Headers ? headers.get(name) : (headers[name] ?? headers[name.toLowerCase()]);
    const value = Array.isArray(v) ? v[0] : v;
    if (typeof value === 'string') flat[name] = value;
  }
  try {
    return new Webhook(secret).verify(body, flat) as Generation;
  } catch (err) {
    throw ItemgenError.client('webhook_invalid', `The webhook is not authentic: ${(err as Error).message}.`, err);
  }
}
