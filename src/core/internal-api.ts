// The internal API (/internal/v1) as one contract: the request bodies, the answers and the 409
// codes of claim, progress, complete, fail and release. The gateway declares its routes with these
// schemas and the runner's client builds its requests and parses its answers with them, so a field
// renamed here fails the type check on both sides instead of a runner in production.
// Built with zod itself: @hono/zod-openapi's `z` is the same object, extended with OpenAPI metadata.
import { z } from 'zod';
import { generationParamsSchema, SCHEDULERS, seedSchema } from './request.ts';
import { STATUSES } from './status.ts';
import { storableText } from './text.ts';

/** A model's name: what its folder's itemgen.json calls it (default the folder's name), also a path segment. */
export const MODEL_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
const modelName = z.string().regex(MODEL_NAME_PATTERN, 'letters, digits, ".", "_" and "-", at most 100');

/** The runner's stages it times, as the complete body names them. */
export const RUNNER_TIMINGS = ['claim_ms', 'text_encoder_ms', 'denoising_ms', 'decode_ms', 'png_ms', 'upload_ms'] as const;
export type RunnerTiming = (typeof RUNNER_TIMINGS)[number];

// generations.attempts is a PostgreSQL integer.
const attempt = z.number().int().min(1).max(2 ** 31 - 1).describe('The attempt number the claim returned.');
const timestamp = z.iso.datetime({ offset: true });

const claimBody = z.strictObject({ runner_id: storableText().min(1).max(200) });

const claimAnswer = z.object({
  id: z.string(),
  attempt: z.number().int().min(1),
  params: generationParamsSchema,
  lease_expires_at: timestamp,
  lease_seconds: z.number().int().min(1),
  /** Submit → claim on the gateway's clock, when it says. */
  queued_ms: z.number().min(0).optional(),
});

/** Largest preview PNG a progress report may carry, decoded (base64 makes it 4/3 larger, within the body limit's 64 KB). */
export const MAX_PREVIEW_BYTES = 32 * 1024;
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

const previewPng = z
  .base64()
  .max(Math.ceil(MAX_PREVIEW_BYTES / 3) * 4)
  .refine((b64) => Buffer.from(b64.slice(0, 12), 'base64').subarray(0, 8).equals(PNG_SIGNATURE), 'must be a PNG')
  .describe('The latest preview of the latents (base64 PNG), at most ~2 per second; the gateway keeps only the latest.');

const progressBody = z.strictObject({
  attempt,
  step: z.number().int().min(0).max(10_000),
  total: z.number().int().min(1).max(10_000),
  preview: previewPng.optional(),
});

/** A stop is never said here but as a 409: a 200 always means "go on". */
const progressAnswer = z.object({ stop: z.literal(false), lease_expires_at: timestamp });

const completeBody = z.strictObject({
  attempt,
  images: z
    .array(
      z.strictObject({
        key: storableText().min(1).max(1024),
        // Shown to clients as the image's link: never a javascript: or data: URL.
        url: z.url({ protocol: /^https?$/, error: 'must be an http or https URL' }).max(8192).optional(),
        /** The seed this image ran with; without it, params.seed + its index. */
        seed: seedSchema.optional(),
      }),
    )
    .min(1)
    .max(4),
  /** What ran; optional, for runners that predate it. */
  ran: z
    .strictObject({
      prompt: storableText().max(8000),
      negative_prompt: storableText().max(8000),
      model: z.strictObject({ name: storableText().min(1).max(200), hash: z.string().regex(/^[0-9a-f]{64}$/, 'sha256 hex') }),
      execution_provider: z.string().regex(/^[a-z][a-z0-9_]{0,31}$/),
    })
    .optional(),
  /** Where the runner's time went, in ms; each optional. */
  timings: z
    .strictObject(Object.fromEntries(RUNNER_TIMINGS.map((k) => [k, z.number().min(0).max(86_400_000).optional()])) as Record<RunnerTiming, z.ZodOptional<z.ZodNumber>>)
    .optional(),
});

export type RanReport = NonNullable<z.output<typeof completeBody>['ran']>;
export type RunnerTimings = NonNullable<z.output<typeof completeBody>['timings']>;

/** What a runner says of its model at start (PUT /internal/v1/models/{name}); GET /v1/models lists it with the limits. */
export const modelDescriptionSchema = z.strictObject({
  name: modelName,
  hash: z.string().regex(/^[0-9a-f]{64}$/, 'sha256 hex'),
  execution_provider: z.string().regex(/^[a-z][a-z0-9_]{0,31}$/),
  default_scheduler: z.enum(SCHEDULERS),
  default_negative_prompt: storableText().max(8000),
  prompt_prefix: storableText().max(8000),
});
export type ModelDescription = z.output<typeof modelDescriptionSchema>;

const registeredAnswer = z.object({ name: z.string(), registered: z.literal(true) });

const failBody = z.strictObject({
  attempt,
  code: z.string().regex(/^[a-z][a-z0-9_]{0,63}$/, 'snake_case, at most 64 characters'),
  message: storableText().min(1).max(2000),
});

/** The generation's status after complete or fail. */
const settledAnswer = z.object({ status: z.enum(STATUSES) });

const releaseBody = z.strictObject({ attempt });

const releaseAnswer = z.object({ released: z.literal(true) });

/** Every operation: its method and path under /internal/v1 (one path parameter), what it takes and what a 200 answers. */
export const internalApi = {
  claim: { method: 'post', path: '/generations/{id}/claim', body: claimBody, answer: claimAnswer },
  progress: { method: 'post', path: '/generations/{id}/progress', body: progressBody, answer: progressAnswer },
  complete: { method: 'post', path: '/generations/{id}/complete', body: completeBody, answer: settledAnswer },
  fail: { method: 'post', path: '/generations/{id}/fail', body: failBody, answer: settledAnswer },
  release: { method: 'post', path: '/generations/{id}/release', body: releaseBody, answer: releaseAnswer },
  registerModel: { method: 'put', path: '/models/{name}', body: modelDescriptionSchema, answer: registeredAnswer },
} as const;

export type InternalApi = typeof internalApi;
export type InternalOperation = keyof InternalApi;
/** What the runner sends for `op`. */
export type InternalBody<Op extends InternalOperation> = z.input<InternalApi[Op]['body']>;

/** Why a transition did not apply (409; nothing changed), as the runner acts on it. */
export const CONFLICT_CODES = [
  /** Finished (completed or failed): stop. */
  'already_finished',
  /** Canceled by its client: stop. */
  'canceled',
  /** The claim is no longer this runner's (its lease expired and another claimed it, or never claimed): stop. */
  'lease_lost',
  /** Another runner's lease is live: it can be claimed again after `retry_after_s`. */
  'claimed',
] as const;
export type ConflictCode = (typeof CONFLICT_CODES)[number];

/** The 409 codes after which the runner stops working on the generation. */
export const STOP_CODES = ['already_finished', 'canceled', 'lease_lost'] as const satisfies readonly ConflictCode[];
export type StopCode = (typeof STOP_CODES)[number];
export const isStopCode = (code: string): code is StopCode => (STOP_CODES as readonly string[]).includes(code);

/** The fields a 409 adds to its problem document (src/gateway/problem.ts). */
const conflictExtra = z.object({
  generation_status: z.enum(STATUSES),
  /** Set with every stop code. */
  stop: z.literal(true).optional(),
  /** With `claimed`: when the other runner's lease ends (also the Retry-After header). */
  retry_after_s: z.number().int().min(1).optional(),
});
export type ConflictExtra = z.output<typeof conflictExtra>;

/** A 409's whole body: RFC 9457 problem details with a conflict code and the fields above. */
export const conflictProblem = z.object({
  type: z.string(),
  title: z.string(),
  status: z.literal(409),
  code: z.enum(CONFLICT_CODES),
  detail: z.string(),
  ...conflictExtra.shape,
});
export type ConflictProblem = z.output<typeof conflictProblem>;
