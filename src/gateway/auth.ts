// API keys (Authorization: Bearer igk_…) for the public API, the runner token for the internal
// one and the admin token for key management. Keys are stored as sha256 hashes; lookups are cached briefly, so a revoked key
// stops working within API_KEY_CACHE_MS.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { AppError } from '../core/errors.ts';
import type { Queryable } from '../store/types.ts';
import { ANONYMOUS_KEY_ID } from '../store/apiKey.ts';
import { countActiveApiKeys } from '../store/sql/countActiveApiKeys.ts';
import { findActiveApiKeyByHash } from '../store/sql/findActiveApiKeyByHash.ts';

export interface Principal {
  apiKeyId: string;
  maxUnfinished: number;
  maxUnfinishedCost: number;
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
  /** Started open (loopback, no keys): requests without a key act as the anonymous owner until a key exists. */
  open: boolean;
  /**
   * Started locked (off loopback, no keys): every request is refused with this error, which says
   * how to create the first key, until a key exists. null: not locked.
   */
  locked: AppError | null;
  anonymousMaxUnfinished: number;
  /** The compute budget of keys without their own, and of the open mode. */
  defaultMaxUnfinishedCost: number;
  cacheMs: number;
  now?: () => number;
  /**
   * A request without a valid key is about to be refused with `err` (401): the error to throw
   * instead (a 429 once its client address is over its limit), or `err` itself.
   */
  refuseUnknown?: (c: Context, err: AppError) => Promise<AppError>;
}

export interface ApiKeyAuth {
  middleware: MiddlewareHandler<AuthEnv>;
  /** What requests without a valid key meet now: let in (open), refused as locked, or refused. */
  mode(): 'open' | 'locked' | 'keys';
  /** A key was created or revoked here: forget cached lookups, and end the open or locked mode. */
  keysChanged(): void;
}

/**
 * Bearer API keys, looked up by hash and cached for `cacheMs`. The open and the locked mode end
 * for good once a key exists: when this gateway creates one at once, when another process does
 * within `cacheMs` (each request without a valid key checks, at most once per `cacheMs`). A key
 * made elsewhere works at once either way: lookups go to the database.
 */
export function apiKeyAuth(o: ApiKeyAuthOptions): ApiKeyAuth {
  const cache = new Map<string, { principal: Principal | null; until: number }>();
  const now = o.now ?? Date.now;
  let noKeys = o.open || o.locked !== null;
  let keysCheckedAt = -Infinity;
  const stillNoKeys = async () => {
    if (noKeys && now() - keysCheckedAt >= o.cacheMs) {
      keysCheckedAt = now();
      if ((await countActiveApiKeys(o.db)) > 0) noKeys = false;
    }
    return noKeys;
  };
  const refuse = async (c: Context, err: AppError) => {
    const reason = o.locked && (await stillNoKeys()) ? o.locked : err;
    return o.refuseUnknown ? o.refuseUnknown(c, reason) : reason;
  };
  const lookup = async (key: string): Promise<Principal | null> => {
    const hash = hashKey(key);
    const hit = cache.get(hash);
    if (hit && hit.until > now()) return hit.principal;
    const found = await findActiveApiKeyByHash(o.db, hash);
    const principal = found
      ? { apiKeyId: found.id, maxUnfinished: found.maxUnfinished, maxUnfinishedCost: found.maxUnfinishedCost ?? o.defaultMaxUnfinishedCost }
      : null;
    if (o.cacheMs > 0) {
      if (cache.size > 10_000) cache.clear();
      cache.set(hash, { principal, until: now() + o.cacheMs });
    }
    return principal;
  };
  return {
    mode: () => (!noKeys ? 'keys' : o.open ? 'open' : 'locked'),
    keysChanged() {
      cache.clear();
      noKeys = false;
    },
    middleware: async (c, next) => {
      const header = c.req.header('Authorization');
      if (header === undefined && o.open && (await stillNoKeys())) {
        c.set('principal', { apiKeyId: ANONYMOUS_KEY_ID, maxUnfinished: o.anonymousMaxUnfinished, maxUnfinishedCost: o.defaultMaxUnfinishedCost });
        return next();
      }
      const key = bearer(header);
      if (!key) throw await refuse(c, unauthorized('Send your API key as "Authorization: Bearer <key>".'));
      const principal = await lookup(key);
      if (!principal) throw await refuse(c, unauthorized('This API key is unknown or revoked.'));
      c.set('principal', principal);
      return next();
    },
  };
}

/** A fixed bearer token (the runner token, the admin token), compared in constant time. */
export function tokenAuth(token: string, refusal: string): MiddlewareHandler {
  const expected = Buffer.from(hashKey(token));
  return async (c, next) => {
    const presented = bearer(c.req.header('Authorization'));
    if (!presented || !timingSafeEqual(Buffer.from(hashKey(presented)), expected)) throw unauthorized(refusal);
    return next();
  };
}
