// Webhooks: signed POSTs of a generation's events (Standard Webhooks), from the outbox the store's
// triggers fill (migration 005). The gateway wires it (src/gateway/service.ts) and hands in what
// it needs (database, presentation, policy); nothing here imports the gateway.
export { startDeliverer, WEBHOOK_CHANNEL, type AttemptOutcome, type Deliverer, type DelivererOptions } from './deliverer.ts';
export {
  addressRefusal,
  checkTarget,
  parseAllowList,
  systemResolver,
  TargetRefused,
  urlRefusal,
  type ResolvedAddress,
  type Resolver,
  type TargetPolicy,
} from './policy.ts';
export { MAX_ANSWER_BYTES } from './post.ts';
export { CAP_FACTOR, retryAfterMs, retryDelayMs } from './schedule.ts';
export { newWebhookSecret, signedHeaders, USER_AGENT } from './sign.ts';

/** The events a submit may ask for; `completed` covers completed, failed and canceled. */
export const WEBHOOK_EVENTS = ['start', 'progress', 'completed'] as const;
export type WebhookEventName = (typeof WEBHOOK_EVENTS)[number];
