// A job's progress reports, which are also its heartbeats: the pipeline steps far faster than the
// gateway needs to hear of them, so reports are throttled and coalesced to the latest step, and the
// gateway's answer to one (canceled, finished elsewhere, lease lost) is what stops the job. A
// preview rides along with the report of its step; one not yet sent is carried by the next report
// rather than lost when steps are coalesced.
import type { Clock } from '../core/retry.ts';
import type { Refusal, ReportResult } from './gateway-client.ts';

export interface ProgressReporterOptions {
  /** Least time between the starts of two reports. */
  intervalMs: number;
  clock: Clock;
  send: (step: number, total: number, preview: Buffer | undefined) => Promise<ReportResult>;
  /** The gateway answered that the work should stop; called once, and no report is sent after it. */
  onStop: (refusal: Refusal) => void;
  /** A report failed (the gateway unreachable past its retries): the generation goes on regardless. */
  onError: (err: unknown) => void;
}

export interface ProgressReporter {
  /** The pipeline reached `step` of `total` (with a preview PNG of it): reported now, or later as the latest step. */
  step(step: number, total: number, preview?: Buffer): void;
  /** Sends the last step at once, without the wait, and resolves once every answer is in. */
  finish(): Promise<void>;
  /** Sends nothing more (the job ended another way); a report in flight is not waited for. */
  close(): void;
}

/**
 * Throttled progress reports: at most one every `intervalMs`, one at a time, always the latest
 * step; `finish()` sends the last step at once and waits for every answer.
 */
export function createProgressReporter(o: ProgressReporterOptions): ProgressReporter {
  let pending: { step: number; total: number; preview: Buffer | undefined } | null = null;
  let inFlight: Promise<void> | null = null;
  let lastSentAt = -Infinity;
  /** The wait before the next report, aborted to drop it. */
  let timer: AbortController | null = null;
  let closed = false;

  const send = () => {
    if (!pending || inFlight || closed) return;
    const { step, total, preview } = pending;
    pending = null;
    lastSentAt = o.clock.now();
    inFlight = o
      .send(step, total, preview)
      .then(
        (answer) => {
          if (!answer.ok && !closed) {
            closed = true;
            o.onStop(answer);
          }
        },
        (err) => o.onError(err),
      )
      .finally(() => {
        inFlight = null;
        schedule();
      });
  };
  const schedule = () => {
    if (!pending || inFlight || closed || timer) return;
    const wait = lastSentAt + o.intervalMs - o.clock.now();
    if (wait <= 0) return send();
    const waiting = (timer = new AbortController());
    o.clock.sleep(wait, waiting.signal).then(
      () => {
        // Cleared after the wait ended but before this ran: the report is no longer wanted here.
        if (waiting.signal.aborted) return;
        timer = null;
        send();
      },
      () => {},
    );
  };
  const clearTimer = () => {
    timer?.abort();
    timer = null;
  };

  return {
    step(step, total, preview) {
      pending = { step, total, preview: preview ?? pending?.preview };
      schedule();
    },
    async finish() {
      clearTimer();
      while (inFlight) {
        await inFlight;
        clearTimer();
      }
      send();
      await inFlight;
    },
    close() {
      closed = true;
      clearTimer();
    },
  };
}
