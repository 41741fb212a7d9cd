// GET /v1/generations/{id}/images/{n}: the owner's way to an image. A redirect to a short-lived
// signed URL when images are in GCS (the bytes never pass through the gateway), the bytes
// themselves when they are in the local folder of the embedded mode.
// GET …/images/{n}/thumbnail: the same for its gallery thumbnail (src/gateway/thumbnails.ts).
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { AppError, notFound } from '../../core/errors.ts';
import { THUMBNAIL_SIZE } from '../../storage/types.ts';
import { getGeneration } from '../../store/sql/getGeneration.ts';
import type { GatewayDeps, GatewayEnv } from '../deps.ts';
import { EXAMPLE_ID } from '../examples.ts';
import { problemResponse as problem } from '../present.ts';
import { createThumbnails } from '../thumbnails.ts';
import { validationHook } from '../validation.ts';

// Images never change once stored, and only their owner may fetch them.
const IMMUTABLE = 'private, max-age=31536000, immutable';

const params = z.object({
  id: z.uuid().openapi({ param: { name: 'id', in: 'path' }, example: EXAMPLE_ID }),
  n: z.coerce.number().int().min(0).max(3).openapi({ type: 'integer', minimum: 0, maximum: 3, param: { name: 'n', in: 'path', required: true }, example: 0 }),
});

const imageRoute = createRoute({
  method: 'get',
  path: '/{id}/images/{n}',
  operationId: 'getImage',
  summary: 'Image n of a completed generation (PNG, or a redirect to a signed URL)',
  security: [{ bearer: [] }],
  request: { params },
  responses: {
    200: { description: 'The PNG', content: { 'image/png': { schema: z.string().openapi({ format: 'binary' }) } } },
    302: { description: 'Redirect to a signed URL' },
    400: problem('Not a UUID or not an image index'),
    404: problem('Unknown generation, not completed, or no such image'),
  },
});

const ETAG_EXAMPLE = '"Jq3Yk0mB5xV2nR8tLw1cZpQe4sHf7uDg6aOiXbNyEjM"';

const thumbnailRoute = createRoute({
  method: 'get',
  path: '/{id}/images/{n}/thumbnail',
  operationId: 'getImageThumbnail',
  summary: `A small WebP of image n for galleries (longest side ${THUMBNAIL_SIZE} px), or a redirect to a signed URL`,
  description:
    `Image n scaled down to at most ${THUMBNAIL_SIZE} pixels on its longer side, keeping its aspect (never scaled up), as WebP: ` +
    'a few kilobytes instead of the PNG. Made on the first request and stored beside the image, so later ones read it; ' +
    'the generation links it as `images[].thumbnail_url`. Cached for good (it never changes) and with a strong ETag, ' +
    'answered 304 to a matching If-None-Match. With images in GCS, a redirect to a short-lived signed URL instead.',
  security: [{ bearer: [] }],
  request: {
    params,
    headers: z.object({
      'if-none-match': z.string().optional().openapi({ description: 'An ETag this route gave: 304 when it is the thumbnail\'s.', example: ETAG_EXAMPLE }),
    }),
  },
  responses: {
    200: {
      description: 'The WebP',
      headers: z.object({
        ETag: z.string().openapi({ description: 'Strong: the thumbnail\'s SHA-256.', example: ETAG_EXAMPLE }),
        'Cache-Control': z.string().openapi({ example: IMMUTABLE }),
      }),
      content: { 'image/webp': { schema: z.string().openapi({ format: 'binary' }) } },
    },
    302: { description: 'Redirect to a signed URL' },
    304: { description: 'The thumbnail is the one If-None-Match names' },
    400: problem('Not a UUID or not an image index'),
    404: problem('Unknown generation, not completed, or no such image'),
    422: problem('The stored image cannot be decoded (image_unreadable)'),
  },
});

/** The storage key of image n of the caller's completed generation; the 404s both routes share otherwise. */
async function imageKeyOf(deps: GatewayDeps, c: Context<GatewayEnv>, id: string, n: number): Promise<string> {
  const g = await getGeneration(deps.db, id, c.get('principal').apiKeyId);
  if (!g) throw notFound();
  if (g.status !== 'completed') {
    throw new AppError(404, 'image_not_ready', `The generation is ${g.status}; images exist once it is completed.`, {
      generation_status: g.status,
    });
  }
  const image = g.images?.[n];
  if (!image) throw new AppError(404, 'image_not_found', `The generation has ${g.images?.length ?? 0} image(s).`);
  return image.key;
}

const missing = (deps: GatewayDeps, id: string, key: string) => {
  deps.log.error('a completed generation points at a missing image', { id, key });
  return new AppError(404, 'image_missing', 'The image is not in storage.');
};

/** If-None-Match names `etag` (weak comparison, as RFC 9110 asks of it), or is `*`. */
const matches = (ifNoneMatch: string | undefined, etag: string) =>
  !!ifNoneMatch && ifNoneMatch.split(',').some((tag) => ['*', etag].includes(tag.trim().replace(/^W\//, '')));

export function imageRoutes(deps: GatewayDeps) {
  const app = new OpenAPIHono<GatewayEnv>({ defaultHook: validationHook });
  const thumbnails = createThumbnails({ images: deps.images, log: deps.log, rendered: deps.metrics.thumbnailsRendered });
  app.openapi(imageRoute, async (c) => {
    const { id, n } = c.req.valid('param');
    const key = await imageKeyOf(deps, c, id, n);
    const link = await deps.images.linkFor(key);
    if (link) return c.redirect(link, 302);
    const bytes = await deps.images.read(key);
    if (!bytes) throw missing(deps, id, key);
    return c.body(new Uint8Array(bytes), 200, { 'Content-Type': 'image/png', 'Cache-Control': IMMUTABLE });
  });
  app.openapi(thumbnailRoute, async (c) => {
    const { id, n } = c.req.valid('param');
    const key = await imageKeyOf(deps, c, id, n);
    const thumbnail = await thumbnails.get(key);
    if (!thumbnail) throw missing(deps, id, key);
    if ('link' in thumbnail) return c.redirect(thumbnail.link, 302);
    const headers = { ETag: thumbnail.etag, 'Cache-Control': IMMUTABLE };
    if (matches(c.req.valid('header')['if-none-match'], thumbnail.etag)) return c.body(null, 304, headers);
    return c.body(new Uint8Array(thumbnail.webp), 200, { ...headers, 'Content-Type': 'image/webp' });
  });
  return app;
}
