// The shutdown stack of a service: each resource, once opened, pushes the step that closes it, and
// closing runs the steps newest first, so nothing is closed while something opened after it (and
// possibly using it) still runs. A failing step is logged and the others still run: one stuck
// resource must not keep the rest open. Used both for a normal stop and for a start failing halfway.
import type { Logger } from './log.ts';

export interface CleanupStack {
  push(step: () => Promise<unknown>): void;
  /** Runs the steps pushed so far, newest first, each once; resolves when all have settled. */
  close(): Promise<void>;
}

export function cleanupStack(log: Logger): CleanupStack {
  const steps: (() => Promise<unknown>)[] = [];
  return {
    push: (step) => void steps.push(step),
    async close() {
      for (let step = steps.pop(); step; step = steps.pop()) {
        // A step that throws at once, not only one that rejects, is caught the same way.
        await Promise.resolve()
          .then(step)
          .catch((err) => log.warn('shutdown step failed', { err }));
      }
    },
  };
}
