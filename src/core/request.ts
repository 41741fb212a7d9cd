// The generation request contract shared by the gateway (validation, OpenAPI) and the runner
// (queue message). Limits live here and nowhere else.
import { z } from 'zod';
import { storableText } from './text.ts';

export const SCHEDULERS = ['ddim', 'pndm', 'euler', 'euler_a', 'dpmpp_2m', 'lcm'] as const;
export type SchedulerName = (typeof SCHEDULERS)[number];

export const LIMITS = {
  promptChars: 2000,
  steps: { min: 1, max: 150, default: 50 },
  guidance: { min: 0, max: 30, default: 7.5 },
  seedMax: 2 ** 32 - 1,
  size: { min: 256, max: 1024, multipleOf: 8, default: 512 },
  images: { min: 1, max: 4, default: 1 },
} as const;

/**
 * What each scheduler takes beyond the common limits, with Stable Diffusion 1.5's scheduler
 * configuration (the model's own scheduler_config.json; test/core/request.test.ts holds the
 * runner's schedulers to these numbers). LCM samples from its 50-step distillation schedule.
 */
export const SCHEDULER_LIMITS: Record<SchedulerName, { maxSteps: number }> = {
  ddim: { maxSteps: LIMITS.steps.max },
  pndm: { maxSteps: LIMITS.steps.max },
  euler: { maxSteps: LIMITS.steps.max },
  euler_a: { maxSteps: LIMITS.steps.max },
  dpmpp_2m: { maxSteps: LIMITS.steps.max },
  lcm: { maxSteps: 50 },
};

/** "ddim 150, …, lcm 50": the step limits for the API's descriptions. */
function schedulerStepLimits(): string {
  return SCHEDULERS.map((s) => `${s} ${SCHEDULER_LIMITS[s].maxSteps}`).join(', ');
}

const side = (name: string) =>
  z
    .number()
    .int()
    .min(LIMITS.size.min)
    .max(LIMITS.size.max)
    .multipleOf(LIMITS.size.multipleOf, { message: `${name} must be a multiple of ${LIMITS.size.multipleOf}` })
    .default(LIMITS.size.default)
    .describe(`Pixels, ${LIMITS.size.min} to ${LIMITS.size.max}, a multiple of ${LIMITS.size.multipleOf}.`)
    // The OpenAPI generator leaves multipleOf out unless told.
    .meta({ multipleOf: LIMITS.size.multipleOf });

export const seedSchema = z.number().int().min(0).max(LIMITS.seedMax);

/** The seed image `index` of a generation runs with: seed + index, wrapped to 32 bits (as AUTOMATIC1111 does). */
export function imageSeed(seed: number, index: number): number {
  return (seed + index) % 2 ** 32;
}

/** The OpenAPI document's example request (src/gateway/examples.ts builds the rest on it). */
export const REQUEST_EXAMPLE = {
  prompt: 'a glowing sword, tsuki_advtr',
  negative_prompt: 'blurry, lowres, text',
  num_inference_steps: 30,
  guidance_scale: 7.5,
  seed: 7,
  width: 512,
  height: 512,
  scheduler: 'euler_a' as const,
  num_images: 2,
};

/** What a client sends to `POST /v1/generations`. */
export const generationRequestSchema = z
  .strictObject({
    prompt: storableText().trim().min(1, 'prompt must not be empty').max(LIMITS.promptChars),
    negative_prompt: storableText().trim().max(LIMITS.promptChars).default(''),
    num_inference_steps: z
      .number()
      .int()
      .min(LIMITS.steps.min)
      .max(LIMITS.steps.max)
      .default(LIMITS.steps.default)
      .describe(
        `Denoising steps, ${LIMITS.steps.min} to ${LIMITS.steps.max}, and per scheduler at most: ${schedulerStepLimits()} (more is a 422). ` +
          'pndm (PLMS) runs one UNet evaluation more than its steps, which progress.total and the cost count.',
      ),
    guidance_scale: z.number().min(LIMITS.guidance.min).max(LIMITS.guidance.max).default(LIMITS.guidance.default),
    seed: z
      .number()
      .int()
      .min(-1)
      .max(LIMITS.seedMax)
      .optional()
      .describe('0 to 2^32-1; absent or -1 (as AUTOMATIC1111 clients send): picked by the gateway and recorded. Image i uses (seed + i) mod 2^32.'),
    width: side('width'),
    height: side('height'),
    scheduler: z
      .enum(SCHEDULERS)
      .default('ddim')
      .describe(`The sampler. Steps each takes at most: ${schedulerStepLimits()}. lcm samples from its 50-step distillation schedule.`),
    num_images: z.number().int().min(LIMITS.images.min).max(LIMITS.images.max).default(LIMITS.images.default),
  })
  .meta({
    id: 'GenerationRequest',
    example: REQUEST_EXAMPLE,
  });

export type GenerationRequest = z.output<typeof generationRequestSchema>;

/** The parameters a generation runs with: the request after defaults, with its seed fixed. */
export const generationParamsSchema = generationRequestSchema.extend({ seed: seedSchema }).meta({ id: 'GenerationParams' });
export type GenerationParams = z.output<typeof generationParamsSchema>;

/**
 * UNet evaluations of a generation: the progress total a client sees, which `step` reaches. PLMS
 * (`pndm`, with SD 1.5's skip_prk_steps) runs its second timestep twice.
 */
export function denoisingSteps(p: Pick<GenerationParams, 'scheduler' | 'num_inference_steps'>): number {
  return p.scheduler === 'pndm' && p.num_inference_steps > 1 ? p.num_inference_steps + 1 : p.num_inference_steps;
}

/** The compute budget's unit: one UNet evaluation over 256×256 pixels (the smallest job, unguided, costs 1). */
export const COST_UNIT_PIXELS = 256 * 256;

/**
 * What a generation costs to run, in COST_UNIT_PIXELS units: pixels × UNet evaluations × images,
 * twice with guidance (the UNet runs on a doubled batch). 512², 50 steps, guided: 400; the largest
 * request (1024², PLMS 150 steps, 4 images, guided): 19,328.
 */
export function generationCost(p: Pick<GenerationParams, 'width' | 'height' | 'scheduler' | 'num_inference_steps' | 'num_images' | 'guidance_scale'>): number {
  return Math.ceil(((p.width * p.height) / COST_UNIT_PIXELS) * denoisingSteps(p) * p.num_images * (p.guidance_scale > 1 ? 2 : 1));
}

export interface LimitIssue {
  path: string;
  message: string;
}

/** Limits that depend on more than one field; empty when the request is within them. */
export function combinationIssues(p: Pick<GenerationParams, 'scheduler' | 'num_inference_steps'>): LimitIssue[] {
  const { maxSteps } = SCHEDULER_LIMITS[p.scheduler];
  return p.num_inference_steps > maxSteps
    ? [{ path: 'num_inference_steps', message: `the ${p.scheduler} scheduler takes at most ${maxSteps} steps` }]
    : [];
}

/** The replaced system's `POST /generate` body: same limits, its old defaults (seed 50), extra fields ignored as pydantic did. */
export const legacyGenerateSchema = z.object({
  prompt: generationRequestSchema.shape.prompt,
  negative_prompt: generationRequestSchema.shape.negative_prompt,
  num_inference_steps: generationRequestSchema.shape.num_inference_steps,
  guidance_scale: generationRequestSchema.shape.guidance_scale,
  seed: seedSchema.default(50),
});

export function legacyToParams(body: z.output<typeof legacyGenerateSchema>): GenerationParams {
  return {
    ...body,
    width: LIMITS.size.default,
    height: LIMITS.size.default,
    scheduler: 'ddim',
    num_images: 1,
  };
}
