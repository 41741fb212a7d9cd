// Signing per the Standard Webhooks specification: HMAC-SHA256 over "id.timestamp.body" with the
// key's secret, sent as webhook-id / webhook-timestamp / webhook-signature ("v1,<base64>").
import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';

export const USER_AGENT = 'itemgen-webhooks/1';

/** A new signing secret: `whsec_` + base64 of 24 random bytes. */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(24).toString('base64')}`;
}

/** The headers of message `id` with `body`, signed with `secret` at `at`. */
export function signedHeaders(secret: string, id: string, at: Date, body: string): Record<string, string> {
  return {
    'content-type': 'application/json',
    'user-agent': USER_AGENT,
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': new Webhook(secret).sign(id, at, body),
  };
}
