// Process and service endpoints: health, readiness, metrics, the OpenAPI document and its
// rendered reference (Swagger UI served from the swagger-ui-dist package, so /docs works offline).
// Plain handlers (their answers are not all JSON); each is described in the document beside it.
import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { OpenAPIHono, z, type RouteConfig } from '@hono/zod-openapi';
import { countActiveApiKeys } from '../../store/sql/countActiveApiKeys.ts';
import type { GatewayDeps } from '../deps.ts';

const swaggerDir = path.dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
// A Map, not an object literal: a lookup by a requested name must never find Object.prototype's
// members (/docs/constructor, /docs/__proto__).
const ASSETS = new Map([
  ['swagger-ui.css', 'text/css; charset=utf-8'],
  ['swagger-ui-bundle.js', 'text/javascript; charset=utf-8'],
]);

const DOCS_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>itemgen API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
<div id="ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({ url: '/openapi.json', dom_id: '#ui', deepLinking: true });</script>
</body>
</html>`;

/** How the API treats requests without a valid key now (src/gateway/auth.ts). */
const API_MODES = {
  open: 'open: no API key exists yet; requests without a key are let in (loopback only) until the first is created',
  locked: 'locked: no API key exists yet; every API request is 401 until the first is created (README "API keys")',
  keys: 'keys: every API request needs a key',
} as const;

const json = (schema: z.ZodType) => ({ 'application/json': { schema } });
const readiness = z
  .object({ status: z.enum(['ready', 'unavailable']), database: z.boolean(), broker: z.boolean(), api: z.string() })
  .openapi({ example: { status: 'ready', database: true, broker: true, api: API_MODES.keys } });

const DOCUMENTED: RouteConfig[] = [
  {
    method: 'get',
    path: '/healthz',
    operationId: 'getHealth',
    summary: 'Liveness: the process answers',
    responses: { 200: { description: 'Alive', content: json(z.object({ status: z.literal('ok') }).openapi({ example: { status: 'ok' } })) } },
  },
  {
    method: 'get',
    path: '/readyz',
    operationId: 'getReadiness',
    summary: 'Readiness: the database and the broker are reachable',
    description: '`api` says how requests without a valid key are treated now (open, locked or keys).',
    responses: {
      200: { description: 'Ready', content: json(readiness) },
      503: { description: 'The database or the broker is unreachable', content: json(readiness) },
    },
  },
  {
    method: 'get',
    path: '/metrics',
    operationId: 'getMetrics',
    summary: 'Prometheus metrics',
    description: 'Open on loopback; elsewhere it needs the runner token as a bearer token.',
    responses: {
      200: {
        description: 'Prometheus text exposition format',
        content: { 'text/plain': { schema: z.string().openapi({ example: 'itemgen_generations_submitted_total 42\nitemgen_broker_connected 1\n' }) } },
      },
      401: { description: 'Off loopback without the runner token' },
    },
  },
  {
    method: 'get',
    path: '/openapi.json',
    operationId: 'getOpenApi',
    summary: 'This OpenAPI 3.1 document',
    responses: {
      200: { description: 'The document', content: json(z.object({ openapi: z.string() }).passthrough().openapi({ example: { openapi: '3.1.0' } })) },
    },
  },
  {
    method: 'get',
    path: '/docs',
    operationId: 'getDocs',
    summary: 'The API reference (Swagger UI) of this document',
    responses: { 200: { description: 'HTML', content: { 'text/html': { schema: z.string().openapi({ example: '<!doctype html>…' }) } } } },
  },
  {
    method: 'get',
    path: '/docs/{asset}',
    operationId: 'getDocsAsset',
    summary: "The reference's stylesheet and script",
    request: { params: z.object({ asset: z.enum([...ASSETS.keys()] as [string, ...string[]]).openapi({ example: 'swagger-ui.css' }) }) },
    responses: { 200: { description: 'CSS or JavaScript' }, 404: { description: 'No such asset' } },
  },
];

export function systemRoutes(deps: GatewayDeps, openapi: () => unknown, apiMode: () => keyof typeof API_MODES) {
  const app = new OpenAPIHono();
  const assetCache = new Map<string, Buffer>();
  for (const route of DOCUMENTED) app.openAPIRegistry.registerPath(route);

  app.get('/healthz', (c) => c.json({ status: 'ok' }));

  // Ready when the database and the broker are reachable. Keys are not a condition (a gateway
  // without any must come up so the first can be created through it), but it says whether any
  // exist, so an operator sees a locked API; not how many (the route is public).
  app.get('/readyz', async (c) => {
    const apiKeys = await countActiveApiKeys(deps.db).catch(() => null);
    const database = apiKeys !== null;
    const broker = deps.queue.isConnected();
    const ready = database && broker;
    const api = API_MODES[apiKeys ? 'keys' : apiMode()];
    return c.json({ status: ready ? 'ready' : 'unavailable', database, broker, api }, ready ? 200 : 503);
  });

  app.get('/metrics', async (c) => {
    const { registry } = deps.metrics;
    return c.body(await registry.metrics(), 200, { 'Content-Type': registry.contentType });
  });

  app.get('/openapi.json', (c) => c.json(openapi()));

  app.get('/docs', (c) => c.html(DOCS_HTML));
  app.get('/docs/:asset', async (c) => {
    const name = c.req.param('asset');
    const type = ASSETS.get(name);
    if (!type) return c.notFound();
    let data = assetCache.get(name);
    if (!data) assetCache.set(name, (data = await fs.readFile(path.join(swaggerDir, name))));
    return c.body(new Uint8Array(data), 200, { 'Content-Type': type, 'Cache-Control': 'public, max-age=86400' });
  });

  return app;
}
