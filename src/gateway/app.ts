// The gateway as a Hono app built from its dependencies (no network of its own, so tests can
// drive it with app.request). Sub-apps per concern; auth and limits at the edge.
import { OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { AppError } from '../core/errors.ts';
import { apiKeyAuth, tokenAuth } from './auth.ts';
import type { GatewayDeps, GatewayEnv } from './deps.ts';
import { clientAddress, readBody, servedHosts } from './http.ts';
import { observeRequests } from './observe.ts';
import { addressBucket, keyRateLimits, rateLimited } from './rate-limit.ts';
import { errorHandler, problem } from './problem.ts';
import { adminRoutes } from './routes/admin.ts';
import { eventRoutes } from './routes/events.ts';
import { generationsRoutes } from './routes/generations.ts';
import { imageRoutes } from './routes/images.ts';
import { internalRoutes } from './routes/internal.ts';
import { legacyRoutes } from './routes/legacy.ts';
import { modelRoutes } from './routes/models.ts';
import { previewRoutes } from './routes/previews.ts';
import { systemRoutes } from './routes/system.ts';
import { webRoutes } from './routes/web.ts';
import { webhookRoutes } from './routes/webhooks.ts';
import { generationEventWebhook } from './webhook-doc.ts';

export function createApp(deps: GatewayDeps) {
  const { metrics, settings } = deps;
  const app = new OpenAPIHono<GatewayEnv>();

  app.use('*', observeRequests(deps.log, settings.trustedProxyHops));
  app.use('*', async (c, next) => {
    const started = performance.now();
    await next();
    const route = c.req.routePath || 'unmatched';
    metrics.httpRequests.inc({ method: c.req.method, route, status: String(c.res.status) });
    metrics.httpDuration.observe({ method: c.req.method, route }, (performance.now() - started) / 1000);
  });
  app.use('*', servedHosts(settings.allowedHost));

  const { address } = settings.rateLimits;
  const addressOf = (c: Context) => addressBucket(clientAddress(c, settings.trustedProxyHops));
  const auth = apiKeyAuth({
    db: deps.db,
    open: settings.open,
    locked: settings.locked ? noKeyYet(settings.adminToken !== null) : null,
    anonymousMaxUnfinished: settings.defaultMaxUnfinished,
    defaultMaxUnfinishedCost: settings.defaultMaxUnfinishedCost,
    cacheMs: settings.apiKeyCacheMs,
    ...(address
      ? {
          refuseUnknown: async (c, err) => {
            const d = await deps.limiter.take(addressOf(c), address);
            return d.allowed ? err : rateLimited(d, 'requests without a valid API key');
          },
        }
      : {}),
  });
  const limits = keyRateLimits(deps.limiter, settings.rateLimits);
  for (const path of ['/v1/*', '/generate', '/status/*']) app.use(path, auth.middleware, limits);
  app.use('/internal/*', tokenAuth(settings.runnerToken, 'The internal API needs the runner token.'));
  if (!settings.metricsOpen) app.use('/metrics', tokenAuth(settings.runnerToken, 'Off loopback, /metrics needs the runner token.'));
  if (settings.adminToken) app.use('/admin/*', tokenAuth(settings.adminToken, 'The admin API needs the admin token (ADMIN_TOKEN).'));
  // After authentication: who is unknown is refused before a byte of the body is read.
  app.use('*', readBody(settings.maxBodyBytes, settings.bodyTimeoutMs));

  app.route('/v1/generations', generationsRoutes(deps));
  app.route('/v1/generations', imageRoutes(deps));
  app.route('/v1/generations', previewRoutes(deps));
  app.route('/v1/models', modelRoutes(deps));
  app.route('/v1', eventRoutes(deps));
  app.route('/v1', webhookRoutes(deps));
  app.route('/', legacyRoutes(deps));
  app.route('/internal/v1', internalRoutes(deps));
  if (settings.adminToken) app.route('/admin/v1', adminRoutes(deps, auth.keysChanged));

  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', {
    type: 'http',
    scheme: 'bearer',
    description: 'An API key from `npm run keys -- create --name NAME`.',
  });
  app.openAPIRegistry.registerWebhook(generationEventWebhook);
  let document: unknown;
  const openapi = () =>
    (document ??= app.getOpenAPI31Document({
      openapi: '3.1.0',
      info: {
        title: 'itemgen',
        version: '1',
        description: 'Game-item images in the house style of Tsuki Adventure, as asynchronous generation jobs.',
      },
    }));
  app.route('/', systemRoutes(deps, openapi, auth.mode));
  app.route('/', webRoutes(() => (deps.images.origin ? [deps.images.origin] : [])));

  app.notFound((c) => problem(c, new AppError(404, 'route_not_found', `No route ${c.req.method} ${c.req.path}.`)));
  app.onError(errorHandler(deps.log));
  return Object.assign(app, { auth });
}

/** The refusal of a gateway started without keys off loopback: how the first key is made. */
function noKeyYet(adminApi: boolean): AppError {
  const ways = adminApi
    ? 'through the admin API (POST /admin/v1/keys with "Authorization: Bearer $ADMIN_TOKEN", e.g. ' +
      '`ADMIN_TOKEN=… npm run keys -- --url <this gateway> create --name NAME`), or with ' +
      '`npm run keys -- create --name NAME` where DATABASE_URL reaches its database'
    : 'with `npm run keys -- create --name NAME` where DATABASE_URL reaches its database (this gateway has no ADMIN_TOKEN, so no admin API)';
  return new AppError(
    401,
    'no_api_key',
    `No API key exists yet, so the API is locked. Create the first key ${ways}; then send it as "Authorization: Bearer <key>".`,
    {},
    { 'WWW-Authenticate': 'Bearer realm="itemgen"' },
  );
}
