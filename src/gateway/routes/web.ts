// The web app (src/web/) at `/`, from the same origin as the API it calls: the page and its two
// assets, with a strict Content-Security-Policy (scripts and styles from this origin only, nothing
// inline, no third party), a year's caching for the hashed assets and revalidation for the page.
import { Hono, type Context } from 'hono';
import { webBundle, type WebAsset } from '../../web/index.ts';

/**
 * `imageOrigins`: where images may come from besides this origin (a bucket's signed links); the
 * page fetches them (connect-src) and shows them as blob: URLs. Previews are data: URLs.
 */
export function contentSecurityPolicy(imageOrigins: readonly string[] = []): string {
  const extra = imageOrigins.map((o) => ` ${o}`).join('');
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    `img-src 'self' data: blob:${extra}`,
    `connect-src 'self'${extra}`,
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/** The best encoding the client accepts of those made ahead of time. */
function encodingFor(c: Context): 'br' | 'gzip' | null {
  const accepted = (c.req.header('Accept-Encoding') ?? '').toLowerCase();
  if (/\bbr\b/.test(accepted)) return 'br';
  if (/\bgzip\b/.test(accepted)) return 'gzip';
  return null;
}

function send(c: Context, a: WebAsset, headers: Record<string, string>) {
  const common = { ETag: a.etag, Vary: 'Accept-Encoding', 'X-Content-Type-Options': 'nosniff', ...headers };
  if (c.req.header('If-None-Match') === a.etag) return c.body(null, 304, common);
  const encoding = encodingFor(c);
  const body = encoding ? a[encoding] : a.identity;
  return c.body(new Uint8Array(body), 200, { ...common, 'Content-Type': a.type, ...(encoding ? { 'Content-Encoding': encoding } : {}) });
}

/** `imageOrigins` is asked at the first request (building the app, e.g. for its OpenAPI document alone, needs no image store). */
export function webRoutes(imageOrigins: () => readonly string[]) {
  const app = new Hono();
  let policy: string | undefined;
  app.get('/', async (c) =>
    send(c, (await webBundle()).html, {
      'Cache-Control': 'no-cache',
      'Content-Security-Policy': (policy ??= contentSecurityPolicy(imageOrigins())),
      'Referrer-Policy': 'no-referrer',
      'Cross-Origin-Opener-Policy': 'same-origin',
    }),
  );
  app.get('/assets/:name', async (c) => {
    const a = (await webBundle()).assets.get(c.req.param('name'));
    if (!a) return c.notFound();
    return send(c, a, { 'Cache-Control': 'public, max-age=31536000, immutable' });
  });
  return app;
}
