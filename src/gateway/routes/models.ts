// GET /v1/models: the model(s) runners serve, with the limits a request must keep. The gateway
// loads no model: each runner registers its own at start (PUT /internal/v1/models/{name}), so
// the list is what runners said, and is empty until one has.
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { modelDescriptionSchema } from '../../core/internal-api.ts';
import { LIMITS, SCHEDULER_LIMITS, SCHEDULERS } from '../../core/request.ts';
import { listModels } from '../../store/sql/listModels.ts';
import type { GatewayDeps, GatewayEnv } from '../deps.ts';
import type { GatewaySettings } from '../deps.ts';

const range = (description: string) => z.object({ min: z.number(), max: z.number(), default: z.number().optional() }).describe(description);

const limitsSchema = z
  .object({
    prompt_chars: z.number().int().describe('Longest prompt and negative prompt, in characters.'),
    width: z.object({ min: z.number().int(), max: z.number().int(), multiple_of: z.number().int(), default: z.number().int() }),
    height: z.object({ min: z.number().int(), max: z.number().int(), multiple_of: z.number().int(), default: z.number().int() }),
    num_inference_steps: range('Steps, any scheduler.'),
    steps_per_scheduler: z.record(z.enum(SCHEDULERS), z.object({ max: z.number().int() })).describe('Each scheduler\'s own most steps.'),
    guidance_scale: range('Classifier-free guidance; 1 or less runs unguided (half the cost).'),
    num_images: range('Images per generation.'),
    max_cost: z.number().int().describe('Most one generation may cost: width × height / 256² × UNet evaluations × images, × 2 with guidance.'),
  })
  .openapi('ModelLimits');

const modelSchema = modelDescriptionSchema
  .extend({
    last_seen_at: z.iso.datetime().describe('When a runner last registered it (each does at start).').openapi({ example: '2026-12-07T20:48:03.512Z' }),
    limits: limitsSchema,
  })
  .openapi('Model');

const listRoute = createRoute({
  method: 'get',
  path: '/',
  operationId: 'listModels',
  summary: 'The served model(s) and the limits of a request',
  description:
    'What runners serve, as each registered its model at start: name, hash, execution provider, default scheduler, default ' +
    'negative prompt and prompt prefix (what a generation\'s `ran` reports), with the request limits. Empty until a runner has started.',
  security: [{ bearer: [] }],
  responses: {
    200: { description: 'The models', content: { 'application/json': { schema: z.object({ data: z.array(modelSchema) }) } } },
  },
});

function requestLimits(settings: GatewaySettings): z.infer<typeof limitsSchema> {
  const side = { min: LIMITS.size.min, max: LIMITS.size.max, multiple_of: LIMITS.size.multipleOf, default: LIMITS.size.default };
  return {
    prompt_chars: LIMITS.promptChars,
    width: side,
    height: side,
    num_inference_steps: { ...LIMITS.steps },
    steps_per_scheduler: Object.fromEntries(SCHEDULERS.map((s) => [s, { max: SCHEDULER_LIMITS[s].maxSteps }])) as Record<(typeof SCHEDULERS)[number], { max: number }>,
    guidance_scale: { ...LIMITS.guidance },
    num_images: { ...LIMITS.images },
    max_cost: settings.maxGenerationCost,
  };
}

export function modelRoutes(deps: GatewayDeps) {
  const app = new OpenAPIHono<GatewayEnv>();
  app.openapi(listRoute, async (c) => {
    const limits = requestLimits(deps.settings);
    const models = await listModels(deps.db);
    return c.json(
      {
        data: models.map((m) => ({
          ...(modelDescriptionSchema.parse(m.description) as z.infer<typeof modelDescriptionSchema>),
          last_seen_at: m.lastSeenAt.toISOString(),
          limits,
        })),
      },
      200,
    );
  });
  return app;
}
