// API key management, one implementation for the admin API (src/gateway/routes/admin.ts) and for
// `npm run keys` when it works on the database itself: the request's limits, the key's
// one-time secret, and the shape a key is shown in (never with its secret or hash).
import { z } from '@hono/zod-openapi';
import { storableText } from '../core/text.ts';
import type { ApiKey } from '../store/apiKey.ts';
import { insertApiKey } from '../store/sql/insertApiKey.ts';
import { listApiKeys } from '../store/sql/listApiKeys.ts';
import { revokeApiKey } from '../store/sql/revokeApiKey.ts';
import type { Queryable } from '../store/types.ts';
import { newApiKey } from './auth.ts';

export const MAX_UNFINISHED_LIMIT = 1_000_000;

export const newKeySchema = z
  .strictObject({
    name: storableText().trim().min(1).max(100),
    max_unfinished: z.number().int().min(1).max(MAX_UNFINISHED_LIMIT).optional().describe('Default: DEFAULT_MAX_UNFINISHED'),
    max_unfinished_cost: z.number().int().min(1).max(1_000_000_000).optional().describe('Default: DEFAULT_MAX_UNFINISHED_COST'),
  })
  .openapi('NewApiKey');
export type NewKey = z.output<typeof newKeySchema>;

export const keyViewSchema = z
  .object({
    id: z.uuid(),
    name: z.string(),
    prefix: z.string().describe('The first characters of the key, to tell keys apart.'),
    max_unfinished: z.number().int(),
    max_unfinished_cost: z.number().int().nullable().describe("null: the gateway's default"),
    created_at: z.iso.datetime(),
    revoked_at: z.iso.datetime().nullable(),
  })
  .openapi('ApiKey');
export type KeyView = z.infer<typeof keyViewSchema>;

export const createdKeySchema = keyViewSchema
  .extend({
    key: z.string().describe('The secret, shown this once; only its hash is stored.'),
    adopted_generations: z.number().int().describe('Generations made without a key (open mode) that now belong to this one.'),
  })
  .openapi('CreatedApiKey');
export type CreatedKey = z.infer<typeof createdKeySchema>;

export const viewKey = (k: ApiKey): KeyView => ({
  id: k.id,
  name: k.name,
  prefix: k.prefix,
  max_unfinished: k.maxUnfinished,
  max_unfinished_cost: k.maxUnfinishedCost,
  created_at: k.createdAt.toISOString(),
  revoked_at: k.revokedAt?.toISOString() ?? null,
});

export async function createKey(db: Queryable, request: NewKey, defaultMaxUnfinished: number): Promise<CreatedKey> {
  const k = newApiKey();
  const saved = await insertApiKey(db, {
    name: request.name,
    keyHash: k.hash,
    prefix: k.prefix,
    maxUnfinished: request.max_unfinished ?? defaultMaxUnfinished,
    maxUnfinishedCost: request.max_unfinished_cost ?? null,
  });
  return { ...viewKey(saved), key: k.key, adopted_generations: saved.adopted };
}

export async function listKeys(db: Queryable): Promise<KeyView[]> {
  return (await listApiKeys(db)).map(viewKey);
}

/** By id or printed prefix; null when no active key matches. */
export async function revokeKey(db: Queryable, idOrPrefix: string): Promise<KeyView | null> {
  const k = await revokeApiKey(db, idOrPrefix);
  return k ? viewKey(k) : null;
}
