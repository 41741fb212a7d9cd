// GET /v1/generations/{id}/preview: the latest live preview of a processing generation, a small
// PNG of its latents (src/runner/pipeline/latent-preview.ts) that the runner sent with a progress
// report. Only the latest is kept, and none once the generation has ended.
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { AppError, notFound } from '../../core/errors.ts';
import { getGeneration } from '../../store/sql/getGeneration.ts';
import { getGenerationPreview } from '../../store/sql/getGenerationPreview.ts';
import type { GatewayDeps, GatewayEnv } from '../deps.ts';
import { problemResponse as problem } from '../present.ts';
import { validationHook } from '../validation.ts';
import { EXAMPLE_ID } from '../examples.ts';

const previewRoute = createRoute({
  method: 'get',
  path: '/{id}/preview',
  operationId: 'getGenerationPreview',
  summary: 'The latest live preview of a processing generation (PNG)',
  description:
    'A small picture of the latents at step `X-Preview-Step` (an eighth of the image size, at most 64 pixels a side), ' +
    'replaced about twice a second while the generation runs; the generation links it as `preview.url` while one exists. ' +
    'Event streams carry the same picture as `preview` events.',
  security: [{ bearer: [] }],
  request: { params: z.object({ id: z.uuid().openapi({ param: { name: 'id', in: 'path' }, example: EXAMPLE_ID }) }) },
  responses: {
    200: {
      description: 'The PNG',
      headers: z.object({ 'X-Preview-Step': z.string().openapi({ description: 'The denoising step it shows.' }) }),
      content: { 'image/png': { schema: z.string().openapi({ format: 'binary' }) } },
    },
    400: problem('Not a UUID'),
    404: problem('Unknown generation, or no preview (not processing, or none sent yet)'),
  },
});

export function previewRoutes(deps: GatewayDeps) {
  const app = new OpenAPIHono<GatewayEnv>({ defaultHook: validationHook });
  app.openapi(previewRoute, async (c) => {
    const { id } = c.req.valid('param');
    const { apiKeyId } = c.get('principal');
    const preview = await getGenerationPreview(deps.db, id, apiKeyId);
    if (!preview) {
      const g = await getGeneration(deps.db, id, apiKeyId);
      if (!g) throw notFound();
      throw new AppError(404, 'preview_not_found', `The generation is ${g.status} and has no preview${g.status === 'processing' ? ' yet' : ''}.`, {
        generation_status: g.status,
      });
    }
    return c.body(new Uint8Array(preview.png), 200, {
      'Content-Type': 'image/png',
      'Cache-Control': 'no-store',
      'X-Preview-Step': String(preview.step),
    });
  });
  return app;
}
