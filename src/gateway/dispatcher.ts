// The publishing half of "no dual write": a submit only commits the pending generation and wakes
// this loop; the loop leases undispatched generations in submission order, publishes them with
// confirms and marks them dispatched. A broker outage leaves them undispatched in the database;
// they go out on reconnection (onConnected) or at the next sweep. A crash between publish and
// mark gives a duplicate message, which the claim state machine makes harmless.
import type { Logger } from '../core/log.ts';
import { JOB_MESSAGE_VERSION } from '../core/message.ts';
import type { JobQueue } from '../queue/types.ts';
import type { Queryable } from '../store/db.ts';
import { leaseForDispatch } from '../store/sql/leaseForDispatch.ts';
import { markDispatched } from '../store/sql/markDispatched.ts';
import { releaseDispatch } from '../store/sql/releaseDispatch.ts';
import type { GatewayMetrics } from './metrics.ts';

export interface DispatcherOptions {
  db: Queryable;
  queue: JobQueue;
  log: Logger;
  metrics: GatewayMetrics;
  batchSize: number;
  /** How often to look for undispatched generations without being woken (other instances' crashes). */
  sweepMs: number;
  /** How long a leased batch stays this dispatcher's before another may take it. */
  leaseSeconds?: number;
}

export interface Dispatcher {
  /** A generation was committed: publish soon. Cheap; calls coalesce. */
  wake(): void;
  /** Resolves when every generation committed before the call has been tried once. */
  drained(): Promise<void>;
  stop(): Promise<void>;
}

export function startDispatcher(o: DispatcherOptions): Dispatcher {
  let woken = true;
  let stopped = false;
  let signal: (() => void) | null = null;
  let idleWaiters: (() => void)[] = [];
  const leaseSeconds = o.leaseSeconds ?? 30;

  const wake = () => {
    woken = true;
    signal?.();
  };
  o.queue.onConnected(wake);

  /** Publishes batches until none is left or the broker is gone (then onConnected wakes us). */
  const drain = async (): Promise<void> => {
    while (!stopped && o.queue.isConnected()) {
      const batch = await leaseForDispatch(o.db, o.batchSize, leaseSeconds);
      if (batch.length === 0) return;
      const ids = batch.map((b) => b.id);
      try {
        await o.queue.publish(batch.map((b) => ({ v: JOB_MESSAGE_VERSION, id: b.id, params: b.params })));
      } catch (err) {
        o.metrics.dispatchErrors.inc();
        o.log.warn('publish failed; generations stay pending until the broker is back', { err, count: ids.length });
        await releaseDispatch(o.db, ids);
        return;
      }
      await markDispatched(o.db, ids);
      o.metrics.dispatched.inc(ids.length);
      o.metrics.dispatchBatch.observe(ids.length);
    }
  };

  const loop = async () => {
    while (!stopped) {
      if (!woken) {
        await new Promise<void>((resolve) => {
          signal = resolve;
          setTimeout(resolve, o.sweepMs).unref();
        });
        signal = null;
      }
      woken = false;
      const waiters = idleWaiters;
      idleWaiters = [];
      try {
        await drain();
      } catch (err) {
        o.log.error('dispatcher error; retrying at the next sweep', { err });
      }
      for (const w of waiters) w();
    }
  };
  const running = loop();

  return {
    wake,
    drained() {
      return new Promise<void>((resolve) => {
        idleWaiters.push(resolve);
        wake();
      });
    },
    async stop() {
      stopped = true;
      signal?.();
      await running;
      for (const w of idleWaiters) w();
    },
  };
}
