// How a generation looks on the wire: the v1 representation and the replaced system's shape.
import { z } from '@hono/zod-openapi';
import { RUNNER_TIMINGS } from '../core/internal-api.ts';
import { generationParamsSchema, imageSeed } from '../core/request.ts';
import { LEGACY_STATUS, STATUSES } from '../core/status.ts';
import { THUMBNAIL_SIZE } from '../storage/types.ts';
import type { Generation } from '../store/generation.ts';
import { QUEUE_POSITION_EXACT } from '../store/sql/getGeneration.ts';
import { EXAMPLE_ID, GENERATION_EXAMPLE, PROBLEM_EXAMPLE } from './examples.ts';

export const generationSchema = z
  .object({
    id: z.uuid(),
    status: z.enum(STATUSES),
    progress: z
      .object({ step: z.number().int(), total: z.number().int() })
      .describe('UNet evaluations done and to do (PLMS runs one more than its steps).'),
    cost: z.number().int().describe('What it costs to run, counted in the key\'s compute budget while unfinished: width × height / 256² × UNet evaluations × images, × 2 with guidance.'),
    params: generationParamsSchema,
    queue_position: z
      .number()
      .int()
      .nullable()
      .optional()
      .describe(`Pending generations ahead of this one, while pending; exact up to ${QUEUE_POSITION_EXACT}, estimated from submission order beyond.`),
    created_at: z.iso.datetime(),
    started_at: z.iso.datetime().nullable(),
    finished_at: z.iso.datetime().nullable(),
    error: z.object({ code: z.string(), message: z.string() }).optional().describe('When failed.'),
    images: z
      .array(
        z.object({
          index: z.number().int(),
          url: z.string(),
          thumbnail_url: z
            .string()
            .describe(`GET it for a small WebP of the image (longest side ${THUMBNAIL_SIZE} px, cached for good), for galleries.`)
            .openapi({ example: `${GENERATION_EXAMPLE.links.self}/images/0/thumbnail` }),
          seed: z.number().int().describe('(params.seed + index) mod 2^32: rerun this image alone with num_images 1 and this seed for the same bytes.'),
        }),
      )
      .optional()
      .describe('When completed.'),
    links: z.object({ self: z.string(), events: z.string(), cancel: z.string() }),
    webhook: z.string().optional().describe('Where its events are POSTed, when the submit named a webhook.'),
    webhook_events_filter: z.array(z.enum(['start', 'progress', 'completed'])).optional().describe('Which events are sent to the webhook.'),
    preview: z
      .object({ step: z.number().int(), url: z.string().describe('GET it for the PNG (image/png).') })
      .optional()
      .describe('While processing, once the runner sent one: the latest preview of the latents (about an eighth of the image size, at most 64 pixels a side).'),
    ran: z
      .object({
        prompt: z.string().describe('As the text encoder got it: with the model\'s prompt prefix.'),
        negative_prompt: z.string().describe('As the text encoder got it: the model\'s default when none was asked for.'),
        model: z.object({ name: z.string(), hash: z.string().describe('sha256 of the model\'s ONNX files, hex') }),
        execution_provider: z.string().describe('cpu or cuda'),
      })
      .optional()
      .describe('What ran, once completed (absent for generations completed by runners that did not say).'),
    timings: z
      .object({
        queued_ms: z.number().optional().describe('Submit to first claim.'),
        ...Object.fromEntries(RUNNER_TIMINGS.map((k) => [k, z.number().optional()])),
      })
      .optional()
      .describe('Where the time went, in ms, once started: the queue (submit to first claim), then, once completed, the runner\'s claim call and its stages.'),
  })
  .openapi('Generation', { example: GENERATION_EXAMPLE });

export type GenerationView = z.infer<typeof generationSchema>;

const iso = (d: Date | null) => (d ? d.toISOString() : null);

/** Where image n of a generation is served; the gateway's own route unless storage gave a URL. */
export function imageUrl(base: string, g: Generation, n: number): string {
  return g.images?.[n]?.url ?? `${base}/v1/generations/${g.id}/images/${n}`;
}

export function presentGeneration(g: Generation, base: string): GenerationView {
  const self = `${base}/v1/generations/${g.id}`;
  return {
    id: g.id,
    status: g.status,
    progress: { step: g.step, total: g.totalSteps },
    cost: g.cost,
    params: g.params,
    ...(g.status === 'pending' && g.queuePosition !== undefined ? { queue_position: g.queuePosition } : {}),
    created_at: g.createdAt.toISOString(),
    started_at: iso(g.startedAt),
    finished_at: iso(g.finishedAt),
    ...(g.status === 'failed' ? { error: { code: g.errorCode ?? 'unknown', message: g.errorMessage ?? '' } } : {}),
    ...(g.status === 'completed'
      ? {
          images: (g.images ?? []).map((image, n) => ({
            index: n,
            url: imageUrl(base, g, n),
            thumbnail_url: `${self}/images/${n}/thumbnail`,
            seed: image.seed ?? imageSeed(g.params.seed, n),
          })),
        }
      : {}),
    links: { self, events: `${self}/events`, cancel: `${self}/cancel` },
    ...(g.webhookUrl
      ? { webhook: g.webhookUrl, webhook_events_filter: (g.webhookEvents ?? []) as ('start' | 'progress' | 'completed')[] }
      : {}),
    ...(g.status === 'processing' && g.previewStep !== null ? { preview: { step: g.previewStep, url: `${self}/preview` } } : {}),
    ...(g.ran ? { ran: g.ran } : {}),
    ...(g.startedAt ? { timings: { queued_ms: Math.max(0, g.startedAt.getTime() - g.createdAt.getTime()), ...g.timings } } : {}),
  };
}

export const legacyStatusSchema = z
  .object({
    request_id: z.uuid(),
    status: z.enum(['Pending', 'Processing', 'Completed', 'Failed', 'Canceled']),
    image_url: z.string().optional().describe('Only when Completed.'),
  })
  .openapi('LegacyStatus', {
    example: { request_id: EXAMPLE_ID, status: 'Completed', image_url: `https://itemgen.example.com/v1/generations/${EXAMPLE_ID}/images/0` },
  });

export function presentLegacy(g: Generation, base: string): z.infer<typeof legacyStatusSchema> {
  return {
    request_id: g.id,
    status: LEGACY_STATUS[g.status] as z.infer<typeof legacyStatusSchema>['status'],
    ...(g.status === 'completed' && g.images?.length ? { image_url: imageUrl(base, g, 0) } : {}),
  };
}

export const problemSchema = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    code: z.string().describe('Stable machine-readable error code.'),
    detail: z.string(),
  })
  .catchall(z.unknown())
  .openapi('Problem', { example: PROBLEM_EXAMPLE });

/** An OpenAPI response entry for an error answered as problem+json. */
export const problemResponse = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: problemSchema } },
});
