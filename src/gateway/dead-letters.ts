// The gateway's end of the dead-letter queue: a message past its delivery limit (or refused by a
// runner as unreadable) fails its generation, so a client sees why it never finished instead of
// waiting on it for good. Then the letter is acked; one that cannot be handled goes back to the queue.
import type { Logger } from '../core/log.ts';
import type { Consumer, DeadLetter, JobQueue } from '../queue/types.ts';
import { failGeneration } from '../store/sql/failGeneration.ts';
import type { Queryable } from '../store/types.ts';
import type { GatewayMetrics } from './metrics.ts';

export interface DeadLetterDeps {
  db: Queryable;
  queue: JobQueue;
  metrics: GatewayMetrics;
  log: Logger;
  /** The queue's delivery limit, named in the failure's message. */
  deliveryLimit: number;
}

export function consumeDeadLetters(deps: DeadLetterDeps): Promise<Consumer> {
  return deps.queue.consumeDeadLetters((letter) => failDeadLettered(deps, letter));
}

async function failDeadLettered({ db, metrics, log, deliveryLimit }: DeadLetterDeps, letter: DeadLetter): Promise<void> {
  const id = readId(letter.body);
  if (id) {
    const code = letter.reason === 'delivery_limit' ? 'delivery_limit_exceeded' : 'message_rejected';
    const message =
      letter.reason === 'delivery_limit'
        ? `The job was delivered ${deliveryLimit} times without finishing; it was given up.`
        : 'A runner could not read the job message.';
    const failed = await failGeneration(db, id, null, code, message);
    if (failed) metrics.deadLettered.inc({ reason: letter.reason });
  }
  log.warn('dead-lettered job message', { id, reason: letter.reason });
  letter.ack();
}

/** The generation id of a message, or null when the body is not one a runner could have read. */
function readId(body: Buffer): string | null {
  try {
    const id = (JSON.parse(body.toString('utf8')) as { id?: unknown }).id;
    return typeof id === 'string' && /^[0-9a-f-]{36}$/i.test(id) ? id : null;
  } catch {
    return null;
  }
}
