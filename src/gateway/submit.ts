// Accepting a generation, shared by POST /v1/generations and the compatibility POST /generate:
// one INSERT (cap and idempotency included; shared with the submits in flight beside it, decision
// 17), then the dispatcher is woken. Nothing here waits on the broker.
import { createHash, randomInt } from 'node:crypto';
import { AppError } from '../core/errors.ts';
import { combinationIssues, generationCost, LIMITS, type GenerationParams } from '../core/request.ts';
import type { Generation } from '../store/generation.ts';
import { findGenerationByIdempotencyKey } from '../store/sql/findGenerationByIdempotencyKey.ts';
import type { Principal } from './auth.ts';
import type { GatewayDeps } from './deps.ts';
import { annotate, currentTraceparent, GENERATION_ID } from '../telemetry/index.ts';
import { checkTarget, TargetRefused, type WebhookEventName } from '../webhooks/index.ts';

export const RETRY_AFTER_CAP_SECONDS = 10;

/** `Idempotency-Key` header: 1–255 visible ASCII characters. */
export function parseIdempotencyKey(header: string | undefined): string | null {
  if (header === undefined) return null;
  if (!/^[\x21-\x7e]{1,255}$/.test(header)) {
    throw new AppError(400, 'invalid_idempotency_key', 'Idempotency-Key must be 1 to 255 visible ASCII characters.');
  }
  return header;
}

export interface Submitted {
  generation: Generation;
  /** True when an earlier request with the same Idempotency-Key created it. */
  replayed: boolean;
}

/**
 * `request` is the validated body before a seed is picked, so a retry without a seed matches its
 * original under the same Idempotency-Key.
 */
export async function submitGeneration(
  deps: GatewayDeps,
  principal: Principal,
  request: Omit<GenerationParams, 'seed'> & { seed?: number | undefined },
  idempotencyKey: string | null,
  webhook?: { url: string; events: WebhookEventName[] },
): Promise<Submitted> {
  const issues = combinationIssues(request);
  if (issues.length > 0) {
    throw new AppError(422, 'validation_failed', `The request body is invalid: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, {
      errors: issues,
    });
  }
  const cost = generationCost(request);
  const budget = Math.min(deps.settings.maxGenerationCost, principal.maxUnfinishedCost);
  if (cost > budget) {
    const which = budget === deps.settings.maxGenerationCost ? 'the most one generation may cost' : "this API key's whole compute budget";
    throw new AppError(
      422,
      'generation_too_costly',
      `This generation costs ${cost} units (width × height / 256² × UNet evaluations × images, × 2 with guidance), over ${budget}, ${which}: ask for fewer steps, images or pixels.`,
      { cost, limit: budget },
    );
  }
  if (webhook) await checkWebhook(deps, webhook.url);
  // Without a webhook the hash is what it was before webhooks existed.
  const hashed = webhook ? { ...request, webhook: webhook.url, webhook_events_filter: webhook.events } : request;
  const requestHash = idempotencyKey ? createHash('sha256').update(JSON.stringify(hashed)).digest('hex') : null;
  // -1 is how AUTOMATIC1111 clients say "random": the same as no seed.
  const seed = request.seed === undefined || request.seed === -1 ? randomInt(0, LIMITS.seedMax + 1) : request.seed;
  const params: GenerationParams = { ...request, seed };
  const outcome = await deps.inserter.insert({
    apiKeyId: principal.apiKeyId,
    maxUnfinished: principal.maxUnfinished,
    maxUnfinishedCost: principal.maxUnfinishedCost,
    idempotencyKey,
    requestHash,
    params,
    webhook,
    traceparent: currentTraceparent(),
  });
  if (outcome.kind === 'created') {
    const created = outcome.generation;
    annotate({ [GENERATION_ID]: created.id });
    deps.metrics.submitted.inc();
    deps.metrics.submittedCost.inc({ key_id: principal.apiKeyId }, created.cost);
    deps.dispatcher.enqueue({ id: created.id, params: created.params, traceparent: created.traceparent });
    return { generation: created, replayed: false };
  }
  if (outcome.kind === 'taken' && idempotencyKey) {
    const earlier = await findGenerationByIdempotencyKey(deps.db, principal.apiKeyId, idempotencyKey);
    if (earlier) {
      if (earlier.requestHash !== requestHash) {
        throw new AppError(
          422,
          'idempotency_key_reused',
          'This Idempotency-Key was already used with a different request body.',
          { generation_id: earlier.id },
        );
      }
      return { generation: earlier, replayed: true };
    }
  }
  // Taken, yet gone by now (deleted in between, which forgets its key): rare, and answered as it
  // always was, a 429 to retry after.
  const usage = outcome.kind === 'over_cap' ? outcome : { unfinished: principal.maxUnfinished, unfinishedCost: 0 };
  const retry = { 'Retry-After': String(RETRY_AFTER_CAP_SECONDS) };
  if (usage.unfinished < principal.maxUnfinished && usage.unfinishedCost + cost > principal.maxUnfinishedCost) {
    throw new AppError(
      429,
      'compute_budget_exceeded',
      `This API key's unfinished generations cost ${usage.unfinishedCost} units; with this one (${cost}) that would pass its budget of ${principal.maxUnfinishedCost}. Wait for some to finish.`,
      { limit: principal.maxUnfinishedCost, unfinished_cost: usage.unfinishedCost, cost },
      retry,
    );
  }
  throw new AppError(
    429,
    'too_many_unfinished',
    `This API key already has ${principal.maxUnfinished} unfinished generations; wait for some to finish.`,
    { limit: principal.maxUnfinished },
    retry,
  );
}

/** The webhook's URL and every address its host resolves to must pass the target policy (src/webhooks/policy.ts). */
async function checkWebhook(deps: GatewayDeps, url: string): Promise<void> {
  try {
    await checkTarget(url, deps.webhookPolicy);
  } catch (err) {
    if (!(err instanceof TargetRefused)) throw err;
    const message = `${err.message}`;
    throw new AppError(422, 'webhook_refused', `The request body is invalid: webhook: ${message}.`, {
      errors: [{ path: 'webhook', message }],
    });
  }
}
