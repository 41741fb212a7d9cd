// The runner's one model, shared by the jobs it holds (docs/architecture.md, decision 19): each
// stage that runs onnxruntime sessions takes its turn on a lane, one at a time in arrival order, so
// a pipelined runner never runs two generations on one session set at once. The lanes also count
// the time the model was busy, overlapping stages once, for the model's idle share.
import { GenerationAbortedError } from './pipeline/txt2img.ts';

export interface LaneTurnOptions {
  /** Aborting before the turn comes takes the stage out of the line (it rejects with GenerationAbortedError). */
  signal?: AbortSignal;
  /** Called once, while still in line, when this stage is next and the running one said it ends soon. */
  onNext?: () => void;
}

export interface Lane {
  /** Runs `stage` once every stage before it on this lane has finished. */
  run<T>(stage: () => Promise<T>, options?: LaneTurnOptions): Promise<T>;
  /** The running stage is near its end: the next in line hears it (`onNext`), to get ready without holding the model up. */
  endingSoon(): void;
}

/** Time inside model stages across lanes; a moment two lanes run counts once. */
export interface BusyTime {
  enter(): void;
  leave(): void;
  /** Milliseconds busy so far, the current busy stretch included. */
  busyMs(): number;
}

export function createBusyTime(now: () => number = () => performance.now()): BusyTime {
  let running = 0;
  let since = 0;
  let total = 0;
  return {
    enter() {
      if (running++ === 0) since = now();
    },
    leave() {
      if (--running === 0) total += now() - since;
    },
    busyMs: () => total + (running > 0 ? now() - since : 0),
  };
}

interface Waiter {
  grant: () => void;
  onNext: (() => void) | undefined;
  /** onNext was called. */
  told: boolean;
}

export function createLane(busy: BusyTime): Lane {
  let held = false;
  /** The running stage said it ends soon. */
  let ending = false;
  const line: Waiter[] = [];

  const tellNext = () => {
    const next = line[0];
    if (!ending || !next || next.told) return;
    next.told = true;
    next.onNext?.();
  };
  const release = () => {
    held = false;
    ending = false;
    const next = line.shift();
    if (!next) return;
    held = true;
    next.grant();
  };
  const turn = (options: LaneTurnOptions): Promise<void> => {
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(new GenerationAbortedError());
    if (!held) {
      held = true;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        const at = line.indexOf(waiter);
        if (at < 0) return;
        line.splice(at, 1);
        tellNext();
        reject(new GenerationAbortedError());
      };
      const waiter: Waiter = {
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        onNext: options.onNext,
        told: false,
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      line.push(waiter);
      tellNext();
    });
  };

  return {
    async run(stage, options = {}) {
      await turn(options);
      try {
        // Granted in the same tick as an abort: the stage is not started.
        if (options.signal?.aborted) throw new GenerationAbortedError();
        busy.enter();
        try {
          return await stage();
        } finally {
          busy.leave();
        }
      } finally {
        release();
      }
    },
    endingSoon() {
      if (!held) return;
      ending = true;
      tellNext();
    },
  };
}
