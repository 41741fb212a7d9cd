// The generation state machine. The SQL in src/store/sql enforces it; this module names it for
// the HTTP layer, the OpenAPI document and the compatibility routes.
export const STATUSES = ['pending', 'processing', 'completed', 'failed', 'canceled'] as const;
export type GenerationStatus = (typeof STATUSES)[number];

export const UNFINISHED: readonly GenerationStatus[] = ['pending', 'processing'];
export const TERMINAL: readonly GenerationStatus[] = ['completed', 'failed', 'canceled'];

export function isTerminal(status: GenerationStatus): boolean {
  return TERMINAL.includes(status);
}

/** Status words of the replaced system, for `GET /status/{request_id}`. */
export const LEGACY_STATUS: Record<GenerationStatus, string> = {
  pending: 'Pending',
  processing: 'Processing',
  completed: 'Completed',
  failed: 'Failed',
  canceled: 'Canceled',
};
