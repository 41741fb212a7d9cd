// /admin/v1: key management over HTTP, for `npm run keys` while the embedded product runs (the
// only process that may open its database) and for operators of a deployed gateway. Bearer
// ADMIN_TOKEN (embedded: generated at start and written to DATA_DIR's lock file). Not published
// in /openapi.json: it is not the product's API.
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { AppError } from '../../core/errors.ts';
import { storableText } from '../../core/text.ts';
import type { GatewayDeps } from '../deps.ts';
import { requireJson } from '../http.ts';
import { createdKeySchema, createKey, keyViewSchema, listKeys, newKeySchema, revokeKey } from '../keys.ts';
import { problemResponse as problem } from '../present.ts';
import { validationHook } from '../validation.ts';

const listRoute = createRoute({
  method: 'get',
  path: '/keys',
  hide: true,
  responses: { 200: { description: 'Every key, oldest first', content: { 'application/json': { schema: z.object({ data: z.array(keyViewSchema) }) } } } },
});

const createKeyRoute = createRoute({
  method: 'post',
  path: '/keys',
  hide: true,
  middleware: [requireJson] as const,
  request: { body: { required: true, content: { 'application/json': { schema: newKeySchema } } } },
  responses: {
    201: { description: 'Created; the secret is in `key`, this once', content: { 'application/json': { schema: createdKeySchema } } },
    422: problem('Invalid name or cap'),
  },
});

const revokeRoute = createRoute({
  method: 'post',
  path: '/keys/{key}/revoke',
  hide: true,
  request: { params: z.object({ key: storableText().min(1).max(100).describe('Id or printed prefix') }) },
  responses: {
    200: { description: 'Revoked', content: { 'application/json': { schema: keyViewSchema } } },
    404: problem('No active key matches'),
  },
});

export function adminRoutes(deps: GatewayDeps, keysChanged: () => void) {
  const app = new OpenAPIHono({ defaultHook: validationHook });

  app.openapi(listRoute, async (c) => c.json({ data: await listKeys(deps.db) }, 200));

  app.openapi(createKeyRoute, async (c) => {
    const created = await createKey(deps.db, c.req.valid('json'), deps.settings.defaultMaxUnfinished);
    keysChanged();
    deps.log.info('API key created', { id: created.id, name: created.name, adopted_generations: created.adopted_generations });
    return c.json(created, 201);
  });

  app.openapi(revokeRoute, async (c) => {
    const revoked = await revokeKey(deps.db, c.req.valid('param').key);
    if (!revoked) throw new AppError(404, 'not_found', 'No active key has this id or prefix.');
    keysChanged();
    deps.log.info('API key revoked', { id: revoked.id, name: revoked.name });
    return c.json(revoked, 200);
  });

  return app;
}
