// Small HTTP helpers shared by the route files.
import type { Context, MiddlewareHandler } from 'hono';
import { AppError } from '../core/errors.ts';
import type { GatewaySettings } from './deps.ts';

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
