// API keys (Authorization: Bearer igk_…) for the public API and the runner token for the
// internal one. Keys are stored as sha256 hashes; lookups are cached briefly, so a revoked key
// stops working within API_KEY_CACHE_MS.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import { AppError } from '../core/errors.ts';
import type { Queryable } from '../store/db.ts';
import { ANONYMOUS_KEY_ID, findActiveApiKeyByHash } from '../store/sql/apiKeys.ts';

export interface Principal {
  apiKeyId: string;
  maxUnfinished: number;
}

export type AuthEnv = { Variables: { principal: Principal } };

export const hashKey = (key: string) => createHash('sha256').update(key).digest('hex');

export function newApiKey(): { key: string; prefix: string; hash: string } {
  const key = `igk_${randomBytes(32).toString('base64url')}`;
  return { key, prefix: key.slice(0, 12), hash: hashKey(key) };
}

const unauthorized = (message: string) =>
  new AppError(401, 'unauthorized', message, {}, { 'WWW-Authenticate': 'Bearer realm="itemgen"' });

function bearer(header: string | undefined): string | null {
  const m = /^Bearer ([\x21-\x7e]{1,512})$/i.exec(header?.trim() ?? '');
  return m ? m[1]! : null;
}

export interface ApiKeyAuthOptions {
  db: Queryable;
  /** Open mode: requests without a key act as the anonymous owner. */
  open: boolean;
  anonymousMaxUnfinished: number;
  cacheMs: number;
  now?: () => number;
}

export function apiKeyAuth(o: ApiKeyAuthOptions): MiddlewareHandler<AuthEnv> {
  const cache = new Map<string, { principal: Principal | null; until: number }>();
  const now = o.now ?? Date.now;
  const lookup = async (key: string): Promise<Principal | null> => {
    const hash = hashKey(key);
    const hit = cache.get(hash);
    if (hit && hit.until > now()) return hit.principal;
    const found = await findActiveApiKeyByHash(o.db, hash);
    const principal = found ? { apiKeyId: found.id, maxUnfinished: found.maxUnfinished } : null;
    if (o.cacheMs > 0) {
      if (cache.size > 10_000) cache.clear();
      cache.set(hash, { principal, until: now() + o.cacheMs });
    }
    return principal;
  };
  return async (c, next) => {
    const header = c.req.header('Authorization');
    if (header === undefined && o.open) {
      c.set('principal', { apiKeyId: ANONYMOUS_KEY_ID, maxUnfinished: o.anonymousMaxUnfinished });
      return next();
    }
    const key = bearer(header);
    if (!key) throw unauthorized('Send your API key as "Authorization: Bearer <key>".');
    const principal = await lookup(key);
    if (!principal) throw unauthorized('This API key is unknown or revoked.');
    c.set('principal', principal);
    return next();
  };
}

export function runnerAuth(token: string, what = 'The internal API'): MiddlewareHandler {
  const expected = Buffer.from(hashKey(token));
  return async (c, next) => {
    const presented = bearer(c.req.header('Authorization'));
    if (!presented || !timingSafeEqual(Buffer.from(hashKey(presented)), expected)) {
      throw unauthorized(`${what} needs the runner token.`);
    }
    return next();
  };
}
