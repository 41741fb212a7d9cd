// itemgen/client: a typed client of the itemgen API for Node 20+ and browsers. Generated types
// (schema.ts, `npm run client:types`) plus helpers: submit, wait (SSE with Last-Event-ID resume
// and a polling fallback), cancel, download, rerun, verifyWebhook.
export { createItemgenClient, imageSeed, type ClientOptions, type ItemgenClient, type RerunOptions, type SubmitOptions, type WaitOptions } from './client.ts';
export { ItemgenError, type FieldIssue, type Problem } from './errors.ts';
export { createSseParser, readEventStream, type SseEvent, type SseParser } from './sse.ts';
export { verifyWebhook, type WebhookHeaders } from './webhooks.ts';
export * from './types.ts';
