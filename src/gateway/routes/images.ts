// GET /v1/generations/{id}/images/{n}: the owner's way to an image. A redirect to a short-lived
// signed URL when images are in GCS (the bytes never pass through the gateway), the bytes
// themselves when they are in the local folder of the embedded mode.
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { AppError, notFound } from '../../core/errors.ts';
import { getGeneration } from '../../store/sql/getGeneration.ts';
import type { GatewayDeps, GatewayEnv } from '../deps.ts';
import { EXAMPLE_ID } from '../examples.ts';
import { problemResponse as problem } from '../present.ts';
import { validationHook } from '../validation.ts';

const imageRoute = createRoute({
  method: 'get',
  path: '/{id}/images/{n}',
  operationId: 'getImage',
  summary: 'Image n of a completed generation (PNG, or a redirect to a signed URL)',
  security: [{ bearer: [] }],
  request: {
    params: z.object({
      id: z.uuid().openapi({ param: { name: 'id', in: 'path' }, example: EXAMPLE_ID }),
      n: z.coerce.number().int().min(0).max(3).openapi({ type: 'integer', minimum: 0, maximum: 3, param: { name: 'n', in: 'path', required: true }, example: 0 }),
    }),
  },
  responses: {
    200: { description: 'The PNG', content: { 'image/png': { schema: z.string().openapi({ format: 'binary' }) } } },
    302: { description: 'Redirect to a signed URL' },
    400: problem('Not a UUID or not an image index'),
    404: problem('Unknown generation, not completed, or no such image'),
  },
});

export function imageRoutes(deps: GatewayDeps) {
  const app = new OpenAPIHono<GatewayEnv>({ defaultHook: validationHook });
  app.openapi(imageRoute, async (c) => {
    const { id, n } = c.req.valid('param');
    const g = await getGeneration(deps.db, id, c.get('principal').apiKeyId);
    if (!g) throw notFound();
    if (g.status !== 'completed') {
      throw new AppError(404, 'image_not_ready', `The generation is ${g.status}; images exist once it is completed.`, {
        generation_status: g.status,
      });
    }
    const image = g.images?.[n];
    if (!image) throw new AppError(404, 'image_not_found', `The generation has ${g.images?.length ?? 0} image(s).`);
    const link = await deps.images.linkFor(image.key);
    if (link) return c.redirect(link, 302);
    const bytes = await deps.images.read(image.key);
    if (!bytes) {
      deps.log.error('a completed generation points at a missing image', { id, key: image.key });
      throw new AppError(404, 'image_missing', 'The image is not in storage.');
    }
    return c.body(new Uint8Array(bytes), 200, {
      'Content-Type': 'image/png',
      'Cache-Control': 'private, max-age=31536000, immutable',
    });
  });
  return app;
}
