// Examples for the OpenAPI document (/openapi.json): one realistic generation, as a client sees it,
// reused by the schemas and routes that show it. test/gateway/openapi.test.ts checks each against
// its schema, so none can drift from what the API answers.
import { REQUEST_EXAMPLE } from '../core/request.ts';

const BASE = 'https://itemgen.example.com';
export const EXAMPLE_ID = '9b2f6c1e-4a7d-4e3b-8c5a-2d1f0e9a7b6c';
const self = `${BASE}/v1/generations/${EXAMPLE_ID}`;

export const PARAMS_EXAMPLE = REQUEST_EXAMPLE;

/** A completed generation: 512² × 30 steps × 2 images, guided, costs 4 × 30 × 2 × 2 = 480. */
export const GENERATION_EXAMPLE = {
  id: EXAMPLE_ID,
  status: 'completed' as const,
  progress: { step: 30, total: 30 },
  cost: 480,
  params: PARAMS_EXAMPLE,
  created_at: '2026-05-20T09:14:03.120Z',
  started_at: '2026-05-20T09:14:03.480Z',
  finished_at: '2026-05-20T09:14:11.902Z',
  images: [
    { index: 0, url: `${self}/images/0`, thumbnail_url: `${self}/images/0/thumbnail`, seed: 7 },
    { index: 1, url: `${self}/images/1`, thumbnail_url: `${self}/images/1/thumbnail`, seed: 8 },
  ],
  links: { self, events: `${self}/events`, cancel: `${self}/cancel` },
  ran: {
    prompt: 'tsuki_advtr, a glowing sword, tsuki_advtr',
    negative_prompt: 'blurry, lowres, text',
    model: { name: 'tsuki-adventure-sd15', hash: '5f1c0d9e8b7a6c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d' },
    execution_provider: 'cuda',
  },
  timings: { queued_ms: 360, text_encoder_ms: 21, denoising_ms: 7410, decode_ms: 512, png_ms: 38, upload_ms: 97 },
};

/** The same generation while it runs, as an event of its stream carries it. */
export const PROCESSING_EXAMPLE = {
  ...GENERATION_EXAMPLE,
  status: 'processing' as const,
  progress: { step: 12, total: 30 },
  finished_at: null,
  images: undefined,
  ran: undefined,
  timings: { queued_ms: 360 },
  preview: { step: 12, url: `${self}/preview` },
};

export const PROBLEM_EXAMPLE = {
  type: 'urn:itemgen:problem:generation_too_costly',
  title: 'Unprocessable Content',
  status: 422,
  code: 'generation_too_costly',
  detail:
    'This generation costs 9600 units (width × height / 256² × UNet evaluations × images, × 2 with guidance), over 6400, the most one generation may cost: ask for fewer steps, images or pixels.',
  cost: 9600,
  limit: 6400,
};

/** An event stream as it arrives: `id` the generation's version, `event` its kind, `data` the whole generation. */
export const EVENT_STREAM_EXAMPLE = [
  `id: 3\nevent: status\ndata: ${JSON.stringify({ ...PROCESSING_EXAMPLE, progress: { step: 0, total: 30 } })}\n`,
  `id: 15\nevent: progress\ndata: ${JSON.stringify(PROCESSING_EXAMPLE)}\n`,
  `event: preview\ndata: ${JSON.stringify({ id: EXAMPLE_ID, step: 12, url: 'data:image/png;base64,iVBORw0KGgo…' })}\n`,
  `id: 34\nevent: status\ndata: ${JSON.stringify(GENERATION_EXAMPLE)}\n`,
].join('\n');
