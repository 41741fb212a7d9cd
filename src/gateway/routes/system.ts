// Process and service endpoints: health, readiness, metrics, the OpenAPI document and its
// rendered reference (Swagger UI served from the swagger-ui-dist package, so /docs works offline).
import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Hono } from 'hono';
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

export function systemRoutes(deps: GatewayDeps, openapi: () => unknown, apiMode: () => keyof typeof API_MODES) {
  const app = new Hono();
  const assetCache = new Map<string, Buffer>();

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
