// Holding a submit's answer until its generation is finished (Prefer: wait): woken by the change
// feed, and re-read on every keep-alive tick and at the deadline, so it never depends on LISTEN
// alone and never polls in a tight loop. A client that leaves ends the wait at once; the listener
// goes with it.
import { isTerminal } from '../core/status.ts';
import { DatabaseUnavailableError } from '../store/errors.ts';
import type { Generation } from '../store/generation.ts';
import type { ChangeFeed } from './changes.ts';

export interface AwaitFinished {
  changes: ChangeFeed;
  /** The current generation; null when it is gone (deleted). */
  read: () => Promise<Generation | null>;
  /** What the caller read last; returned when nothing newer could be read. */
  current: Generation;
  /** Epoch ms to stop waiting at. */
  deadline: number;
  tickMs: number;
  signal: AbortSignal;
}

/** The generation once finished, or as it is at the deadline (or when the client left). */
export async function awaitFinished(o: AwaitFinished): Promise<Generation> {
  let changed = false;
  let wake: (() => void) | null = null;
  const notify = () => {
    changed = true;
    wake?.();
  };
  const unsubscribe = o.changes.subscribe(o.current.id, notify);
  o.signal.addEventListener('abort', notify);
  let g = o.current;
  try {
    // Read after subscribing, so no change falls between the caller's read and the subscription.
    for (let first = true; ; first = false) {
      if (!first && !changed) {
        const ms = Math.min(o.deadline - Date.now(), o.tickMs);
        if (ms > 0) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(done, ms);
            function done() {
              clearTimeout(timer);
              wake = null;
              resolve();
            }
            wake = done;
          });
        }
      }
      changed = false;
      if (o.signal.aborted) return g;
      try {
        const now = await o.read();
        if (now === null) return g;
        g = now;
      } catch (err) {
        // The generation is accepted; an unreachable database only means the answer tells less.
        if (!(err instanceof DatabaseUnavailableError)) throw err;
      }
      if (isTerminal(g.status) || Date.now() >= o.deadline) return g;
    }
  } finally {
    unsubscribe();
    o.signal.removeEventListener('abort', notify);
  }
}
