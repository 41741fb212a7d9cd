// The SDK's names for the generated API types (src/client/schema.ts, `npm run client:types`).
import type { components, paths } from './schema.ts';

export type { components, paths };
export type Generation = components['schemas']['Generation'];
export type GenerationParams = components['schemas']['GenerationParams'];
export type GenerationStatus = Generation['status'];
export type GenerationPage = paths['/v1/generations']['get']['responses'][200]['content']['application/json'];
export type ListQuery = NonNullable<paths['/v1/generations']['get']['parameters']['query']>;

type Request = paths['/v1/generations']['post']['requestBody']['content']['application/json'];
/** The webhook fields of a submit (webhook URL and which events it is sent). */
interface WebhookFields {
  webhook?: string;
  webhook_events_filter?: ('start' | 'progress' | 'completed')[];
}
/** The body of a submit: a prompt, the rest optional (the server fills in its defaults). */
export type SubmitBody = Pick<Request, 'prompt'> & Partial<Omit<Request, 'prompt'>> & WebhookFields;

/** One image of a completed generation; `seed` once the server reports it per image. */
export type GenerationImage = NonNullable<Generation['images']>[number] & { seed?: number };

/** A `preview` event of a generation's stream: the latest small image of its latents. */
export interface Preview {
  id: string;
  step: number;
  /** A data: URL of the PNG, or a link. */
  url: string;
}

export const TERMINAL_STATUSES: readonly GenerationStatus[] = ['completed', 'failed', 'canceled'];
export const isTerminal = (s: GenerationStatus) => TERMINAL_STATUSES.includes(s);
