// Small HTTP helpers shared by the route files.
import type { IncomingMessage } from 'node:http';
import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { AppError } from '../core/errors.ts';
import type { GatewaySettings } from './deps.ts';
import { bodyTooLarge } from './problem.ts';

/** The absolute base of links: PUBLIC_URL when configured, else the request's own origin. */
export function baseUrl(c: Context, settings: GatewaySettings): string {
  return settings.publicUrl ?? new URL(c.req.url).origin;
}

/** Bodies must be declared JSON; anything else is refused before it is read. */
export const requireJson: MiddlewareHandler = async (c, next) => {
  const type = c.req.header('Content-Type') ?? '';
  if (!/^application\/(.+\+)?json\s*(;|$)/i.test(type)) {
    throw new AppError(415, 'unsupported_media_type', 'Send the body as JSON with "Content-Type: application/json".');
  }
  return next();
};

/**
 * Refuses bodies over `maxBytes` (413, and the connection is closed since the rest stays unread).
 * Served by @hono/node-server, the body is read straight from Node's stream into Hono's body
 * cache, where the validators find it: building a WHATWG Request and stream for it cost about a
 * tenth of a submit's CPU. Elsewhere (app.request) Hono's own body limit does the job.
 */
export function readBody(maxBytes: number): MiddlewareHandler<{ Bindings: { incoming?: IncomingMessage } }> {
  const refuse = (c: Context) => {
    c.header('Connection', 'close');
    return bodyTooLarge();
  };
  const fallback = bodyLimit({ maxSize: maxBytes, onError: (c) => { throw refuse(c); } });
  return async (c, next) => {
    const incoming = c.env?.incoming;
    if (!incoming) return fallback(c, next);
    if (c.req.method === 'GET' || c.req.method === 'HEAD') return next();
    if (Number(c.req.header('Content-Length') ?? 0) > maxBytes) throw refuse(c);
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of incoming as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > maxBytes) throw refuse(c);
      chunks.push(chunk);
    }
    // Hono keeps promises in its body cache (its type says otherwise).
    c.req.bodyCache.text = Promise.resolve(Buffer.concat(chunks).toString('utf8')) as unknown as string;
    return next();
  };
}
