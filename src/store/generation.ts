// The generation as stored, and the one mapping from a row to it.
import type { GenerationParams } from '../core/request.ts';
import type { GenerationStatus } from '../core/status.ts';
import { toDate, type Row } from './types.ts';

export interface StoredImage {
  /** Object key in image storage, e.g. generated/{id}/0.png */
  key: string;
  /** A link the runner obtained for it, when storage gives one. */
  url?: string;
  /** The seed it ran with, as its runner reported (absent from older rows: params.seed + index). */
  seed?: number;
}

/** What the runner reported running (internal API complete body `ran`). */
export interface Ran {
  prompt: string;
  negative_prompt: string;
  model: { name: string; hash: string };
  execution_provider: string;
}

export interface Generation {
  id: string;
  seq: number;
  apiKeyId: string;
  params: GenerationParams;
  status: GenerationStatus;
  version: number;
  step: number;
  totalSteps: number;
  /** What it costs to run (core/request.ts generationCost), counted in its owner's compute budget. */
  cost: number;
  attempts: number;
  runnerId: string | null;
  leaseExpiresAt: Date | null;
  errorCode: string | null;
  errorMessage: string | null;
  images: StoredImage[] | null;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  /** The last change of any kind: a cursor for the stream of an owner's generations. */
  updatedAt: Date;
  idempotencyKey: string | null;
  requestHash: string | null;
  /** Where its events are POSTed (src/webhooks/); null: no webhook. */
  webhookUrl: string | null;
  /** Which events: a subset of start, progress, completed; null without a webhook. */
  webhookEvents: string[] | null;
  /** What ran, once completed by a runner that says. */
  ran: Ran | null;
  /** The runner's timings in ms (text_encoder_ms, denoising_ms, …), once completed by a runner that says. */
  timings: Record<string, number> | null;
  /** The step of the latest preview while processing (its bytes: getGenerationPreview). */
  previewStep: number | null;
  /** The W3C traceparent of its submit (migration 010): later work on it joins that trace; null without traces. */
  traceparent: string | null;
  /** Pending generations ahead of this one (see getGeneration); only read there. */
  queuePosition?: number | null;
}

/** The columns every statement returns, so one mapper reads them all. */
export const GENERATION_COLUMNS = `id, seq, api_key_id, params, status, version, step, total_steps, cost, attempts,
  runner_id, lease_expires_at, error_code, error_message, images, created_at, started_at,
  finished_at, updated_at, idempotency_key, request_hash,
  webhook_url, webhook_events, ran, timings, preview_step, traceparent`;

const date = (v: unknown) => (v == null ? null : toDate(v));

export function toGeneration(row: Row): Generation {
  return {
    id: String(row.id),
    seq: Number(row.seq),
    apiKeyId: String(row.api_key_id),
    params: row.params as GenerationParams,
    status: row.status as GenerationStatus,
    version: Number(row.version),
    step: Number(row.step),
    totalSteps: Number(row.total_steps),
    cost: Number(row.cost),
    attempts: Number(row.attempts),
    runnerId: (row.runner_id as string | null) ?? null,
    leaseExpiresAt: date(row.lease_expires_at),
    errorCode: (row.error_code as string | null) ?? null,
    errorMessage: (row.error_message as string | null) ?? null,
    images: (row.images as StoredImage[] | null) ?? null,
    createdAt: date(row.created_at) as Date,
    startedAt: date(row.started_at),
    finishedAt: date(row.finished_at),
    updatedAt: date(row.updated_at) as Date,
    idempotencyKey: (row.idempotency_key as string | null) ?? null,
    requestHash: (row.request_hash as string | null) ?? null,
    webhookUrl: (row.webhook_url as string | null) ?? null,
    webhookEvents: (row.webhook_events as string[] | null) ?? null,
    ran: (row.ran as Ran | null) ?? null,
    timings: (row.timings as Record<string, number> | null) ?? null,
    previewStep: row.preview_step == null ? null : Number(row.preview_step),
    traceparent: (row.traceparent as string | null) ?? null,
    ...('queue_position' in row ? { queuePosition: row.queue_position == null ? null : Number(row.queue_position) } : {}),
  };
}
