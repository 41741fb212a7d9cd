// What `itemgen generate` shows on stderr while it waits: a redrawn bar on a terminal, plain
// lines (one per status change, progress at most every few seconds) when stderr is a file or pipe.
import type { Generation } from '../client/index.ts';

export interface ProgressOutput {
  write(text: string): void;
  isTTY?: boolean;
  columns?: number;
}

const WIDTH = 24;
const PLAIN_EVERY_MS = 2000;

export function progressReporter(out: ProgressOutput, now: () => number = Date.now) {
  let firstStep: { at: number; step: number } | null = null;
  let lastStatus = '';
  let lastPlain = 0;
  let drawn = false;

  const eta = (g: Generation): string => {
    const { step, total } = g.progress;
    if (!firstStep || step <= firstStep.step || total <= 0) return '';
    const perStep = (now() - firstStep.at) / (step - firstStep.step);
    return ` ETA ${formatSeconds((perStep * (total - step)) / 1000)}`;
  };

  const line = (g: Generation): string => {
    if (g.status === 'pending') return `${g.id.slice(0, 8)} queued${g.queue_position != null ? `, position ${g.queue_position + 1}` : ''}`;
    if (g.status === 'processing') {
      const { step, total } = g.progress;
      const filled = total > 0 ? Math.round((WIDTH * step) / total) : 0;
      const bar = out.isTTY ? `[${'#'.repeat(filled)}${'.'.repeat(WIDTH - filled)}] ` : '';
      return `${g.id.slice(0, 8)} ${bar}step ${step}/${total}${eta(g)}`;
    }
    return `${g.id.slice(0, 8)} ${g.status}`;
  };

  return {
    update(g: Generation) {
      if (g.status === 'processing' && g.progress.step > 0 && !firstStep) firstStep = { at: now(), step: g.progress.step };
      if (out.isTTY) {
        out.write(`\r\x1b[2K${line(g)}`);
        drawn = true;
        return;
      }
      const changed = g.status !== lastStatus;
      if (changed || now() - lastPlain >= PLAIN_EVERY_MS) {
        out.write(`${line(g)}\n`);
        lastPlain = now();
      }
      lastStatus = g.status;
    },
    /** Ends the redrawn line, so what follows starts on its own. */
    done() {
      if (drawn) out.write('\n');
      drawn = false;
    },
  };
}

function formatSeconds(s: number): string {
  if (s < 60) return `${Math.max(0, Math.round(s))}s`;
  const m = Math.floor(s / 60);
  return `${m}m${String(Math.round(s - m * 60)).padStart(2, '0')}s`;
}
