// Small HTTP helpers shared by the route files.
import type { IncomingMessage } from 'node:http';
import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { AppError } from '../core/errors.ts';
import type { GatewaySettings } from './deps.ts';

/**
 * The absolute base of links: PUBLIC_URL when configured, else the request's own origin, whose
 * Host the `servedHosts` middleware has checked.
 */
export function baseUrl(c: Context, settings: GatewaySettings): string {
  return settings.publicUrl ?? new URL(c.req.url).origin;
}

/**
 * Without PUBLIC_URL, links are built from the request's Host header: only the host names this
 * gateway is reached by are answered (ALLOWED_HOSTS, or loopback's own names on loopback), so a
 * client cannot make it write another host into Location and links, and a web page on a
 * rebinding DNS name cannot talk to an open loopback gateway. `allowed` null: PUBLIC_URL is set.
 */
export function servedHosts(allowed: ((hostname: string) => boolean) | null): MiddlewareHandler {
  return async (c, next) => {
    if (allowed) {
      const host = c.req.header('Host') ?? '';
      const hostname = URL.canParse(`http://${host}`) ? new URL(`http://${host}`).hostname : null;
      if (!hostname || !allowed(hostname)) {
        throw new AppError(421, 'misdirected_request', `This gateway does not serve the host ${JSON.stringify(host.slice(0, 100))}.`);
      }
    }
    return next();
  };
}

/**
 * The client's address: the peer's, or behind `trustedHops` proxies that each append the address
 * they saw to X-Forwarded-For, the entry the farthest trusted one wrote (what a client writes
 * itself sits further left and is not believed).
 */
export function clientAddress(c: Context<{ Bindings: { incoming?: IncomingMessage } }>, trustedHops: number): string {
  const peer = c.env?.incoming?.socket.remoteAddress ?? 'unknown';
  if (trustedHops === 0) return peer;
  const forwarded = (c.req.header('X-Forwarded-For') ?? '').split(',').map((a) => a.trim()).filter(Boolean);
  return forwarded[forwarded.length - trustedHops] ?? forwarded[0] ?? peer;
}

export const unsupportedMediaType = () =>
  new AppError(415, 'unsupported_media_type', 'Send the body as JSON with "Content-Type: application/json".');

/** Bodies must be declared JSON; anything else is refused before it is read. */
export const requireJson: MiddlewareHandler = async (c, next) => {
  const type = c.req.header('Content-Type') ?? '';
  if (!/^application\/(.+\+)?json\s*(;|$)/i.test(type)) {
    throw unsupportedMediaType();
  }
  return next();
};

export const bodyTooLarge = () => new AppError(413, 'body_too_large', 'The request body is larger than this endpoint accepts.');

/** The client went away before its request was read: nothing of ours failed. */
export class ClientClosedRequestError extends Error {
  override name = 'ClientClosedRequestError';
}

/**
 * Reads the request body into Hono's body cache, where the validators find it: bodies over
 * `maxBytes` are refused (413), and a body that has not fully arrived within `timeoutMs` of this
 * middleware (a client trickling it) gets 408; either way the connection is closed, since the rest
 * stays unread. Runs after authentication, so an unknown client never holds a connection open
 * with a slow body. Served by @hono/node-server, the body is read straight from Node's stream:
 * building a WHATWG Request and stream for it cost about a tenth of a submit's CPU. Elsewhere
 * (app.request) Hono's own body limit does the job.
 */
export function readBody(maxBytes: number, timeoutMs: number): MiddlewareHandler<{ Bindings: { incoming?: IncomingMessage } }> {
  const closing = (c: Context, err: AppError) => {
    c.header('Connection', 'close');
    return err;
  };
  const fallback = bodyLimit({ maxSize: maxBytes, onError: (c) => { throw closing(c, bodyTooLarge()); } });
  return async (c, next) => {
    const incoming = c.env?.incoming;
    if (!incoming) return fallback(c, next);
    if (c.req.method === 'GET' || c.req.method === 'HEAD') return next();
    if (Number(c.req.header('Content-Length') ?? 0) > maxBytes) throw closing(c, bodyTooLarge());
    const body = await new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const finish = (outcome: () => void) => {
        clearTimeout(timer);
        incoming.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose);
        outcome();
      };
      const onData = (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBytes) finish(() => reject(closing(c, bodyTooLarge())));
        else chunks.push(chunk);
      };
      const onEnd = () => finish(() => resolve(Buffer.concat(chunks)));
      const onError = (err: Error) => finish(() => reject(new ClientClosedRequestError(`the client closed the connection: ${err.message}`)));
      // 'close' before 'end': the connection went away with the body unfinished.
      const onClose = () => onError(new Error('closed before the body ended'));
      const timer = setTimeout(
        () => finish(() => reject(closing(c, new AppError(408, 'request_timeout', `The request body did not arrive within ${timeoutMs} ms.`)))),
        timeoutMs,
      );
      if (incoming.destroyed) return onClose();
      incoming.on('data', onData).on('end', onEnd).on('error', onError).on('close', onClose);
    });
    // Hono keeps promises in its body cache (its type says otherwise).
    c.req.bodyCache.text = Promise.resolve(body.toString('utf8')) as unknown as string;
    return next();
  };
}
