// The work-queue message: what the dispatcher publishes and a runner consumes. Versioned so a
// runner can refuse (dead-letter) a message it does not understand instead of misreading it.
import { z } from 'zod';
import { generationParamsSchema } from './request.ts';

export const JOB_MESSAGE_VERSION = 1;

export const jobMessageSchema = z.strictObject({
  v: z.literal(JOB_MESSAGE_VERSION),
  id: z.uuid(),
  params: generationParamsSchema,
});
export type JobMessage = z.output<typeof jobMessageSchema>;

export function encodeJobMessage(message: JobMessage): Buffer {
  return Buffer.from(JSON.stringify(message));
}

/** Parses a raw message body; throws an `Error` saying what is wrong with it. */
export function decodeJobMessage(body: Buffer): JobMessage {
  let raw: unknown;
  try {
    raw = JSON.parse(body.toString('utf8'));
  } catch {
    throw new Error('job message is not JSON');
  }
  const parsed = jobMessageSchema.safeParse(raw);
  if (!parsed.success) throw new Error(`invalid job message: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}
