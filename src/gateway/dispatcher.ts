// The publishing half of "no dual write" (docs/architecture.md, decision 3). A submit commits the
// generation and its outbox row in one statement, then hands the job to this dispatcher in
// memory; the dispatcher publishes batches with confirms and clears their outbox rows. Whatever
// the fast path misses (broker down, a crash after commit, another instance's crash) stays in the
// outbox and is leased and published by a sweep: at every (re)connection and every `sweepMs`.
// A crash between publish and clear gives a duplicate message, which the claim state machine
// makes harmless. Each sweep also dispatches again the processing jobs whose lease ran out: their
// runner is gone, and the message it held may be gone with it.
import type { Logger } from '../core/log.ts';
import { JOB_MESSAGE_VERSION } from '../core/message.ts';
import type { GenerationParams } from '../core/request.ts';
import { isTerminal } from '../core/status.ts';
import type { JobQueue } from '../queue/types.ts';
import { DatabaseUnavailableError } from '../store/errors.ts';
import type { Queryable } from '../store/types.ts';
import { clearOutbox } from '../store/sql/clearOutbox.ts';
import { leaseOutbox } from '../store/sql/leaseOutbox.ts';
import { releaseOutbox } from '../store/sql/releaseOutbox.ts';
import { redispatchExpiredLeases } from '../store/sql/redispatchExpiredLeases.ts';
import { contextFrom, failed, GENERATION_ID, SpanKind, startSpan, traceHeaders } from '../telemetry/index.ts';
import type { GatewayMetrics } from './metrics.ts';

export interface DispatcherOptions {
  db: Queryable;
  queue: JobQueue;
  log: Logger;
  metrics: GatewayMetrics;
  batchSize: number;
  /** How often to sweep the outbox without being asked. */
  sweepMs: number;
  /** How long a batch smaller than `batchSize` waits for more jobs before it is published. */
  lingerMs: number;
  /** How long a swept batch stays this dispatcher's before another may take it. */
  leaseSeconds?: number;
}

export interface DispatchJob {
  id: string;
  params: GenerationParams;
  /** Its submit's trace context (stored with the row): the publish joins that trace. */
  traceparent?: string | null;
}

export interface Dispatcher {
  /** A generation was committed with its outbox row: publish it soon. */
  enqueue(job: DispatchJob): void;
  /** Resolves once everything committed before the call has been tried (published or left in the outbox). */
  drained(): Promise<void>;
  stop(): Promise<void>;
}

/** The periodic sweep leaves younger entries to the in-memory path that is about to publish them. */
const SWEEP_MIN_AGE_SECONDS = 2;
/** Past this many jobs waiting in memory, new ones are left to the sweep (bounded memory). */
const MAX_BUFFERED = 10_000;

export function startDispatcher(o: DispatcherOptions): Dispatcher {
  const leaseSeconds = o.leaseSeconds ?? 30;
  let buffer: DispatchJob[] = [];
  /** Sweep pending: 'all' after a (re)connection or when asked to drain, 'aged' on the timer. */
  let sweep: 'all' | 'aged' | null = 'all';
  let stopped = false;
  let signal: (() => void) | null = null;
  let drainWaiters: (() => void)[] = [];

  const wake = () => signal?.();
  const sweepTimer = setInterval(() => {
    sweep ??= 'aged';
    wake();
  }, o.sweepMs);
  sweepTimer.unref();
  o.queue.onConnected(() => {
    sweep = 'all';
    wake();
  });

  const publish = async (jobs: DispatchJob[]) => {
    // A span per job in its submit's trace, the publish and its confirm; the message's headers
    // carry it on to the runner (docs/architecture.md, decision 15).
    const spans = jobs.map((j) =>
      startSpan(
        'publish generation',
        { [GENERATION_ID]: j.id, 'messaging.system': 'rabbitmq', 'messaging.operation.type': 'publish', 'messaging.batch.message_count': jobs.length },
        { kind: SpanKind.PRODUCER, parent: contextFrom(j.traceparent) },
      ),
    );
    try {
      await o.queue.publish(
        jobs.map((j) => ({ v: JOB_MESSAGE_VERSION, id: j.id, params: j.params })),
        new Map(jobs.map((j, i) => [j.id, traceHeaders(spans[i])])),
      );
    } catch (err) {
      for (const span of spans) failed(span, err);
      throw err;
    } finally {
      for (const span of spans) span.end();
    }
    o.metrics.dispatched.inc(jobs.length);
    o.metrics.dispatchBatch.observe(jobs.length);
  };

  const publishBuffered = async () => {
    const batch = buffer.splice(0, o.batchSize);
    try {
      await publish(batch);
    } catch (err) {
      // Their outbox rows stay; the sweep after reconnection publishes them.
      o.metrics.dispatchErrors.inc();
      o.log.warn('publish failed; jobs stay in the outbox until the broker is back', { err, count: batch.length });
      buffer = [];
      return;
    }
    await clearOutbox(o.db, batch.map((j) => j.id));
  };

  const sweepOutbox = async (minAgeSeconds: number) => {
    while (!stopped && o.queue.isConnected()) {
      const entries = await leaseOutbox(o.db, o.batchSize, leaseSeconds, minAgeSeconds);
      if (entries.length === 0) return;
      const ids = entries.map((e) => e.id);
      try {
        // Pending jobs, and processing ones whose lease ran out; finished ones need no message.
        await publish(entries.filter((e) => !isTerminal(e.status)));
      } catch (err) {
        o.metrics.dispatchErrors.inc();
        o.log.warn('publish failed; jobs stay in the outbox until the broker is back', { err, count: ids.length });
        await releaseOutbox(o.db, ids);
        return;
      }
      // A job submitted just before this sweep is in the buffer too: published now, not twice.
      const swept = new Set(ids);
      buffer = buffer.filter((j) => !swept.has(j.id));
      await clearOutbox(o.db, ids);
    }
  };

  /** Processing jobs whose lease ran out go back in the outbox; resolves to how many. */
  const redispatchLost = async () => {
    const ids = await redispatchExpiredLeases(o.db, o.batchSize);
    if (ids.length > 0) {
      o.metrics.redispatched.inc(ids.length);
      o.log.info('leases ran out before their jobs finished; dispatched again', { count: ids.length, ids: ids.slice(0, 20) });
    }
    return ids.length;
  };

  const loop = async () => {
    while (!stopped) {
      if (buffer.length === 0 && sweep === null) {
        await new Promise<void>((resolve) => (signal = resolve));
        signal = null;
        continue;
      }
      const waiters = drainWaiters;
      drainWaiters = [];
      try {
        if (!o.queue.isConnected()) {
          // Nothing can be published; the outbox holds it all until onConnected asks for a sweep.
          buffer = [];
          sweep = null;
        } else if (sweep !== null) {
          // Before the buffer, so a steady stream of submits cannot starve the sweep.
          const all = sweep === 'all';
          sweep = null;
          const lost = await redispatchLost();
          await sweepOutbox(all || lost > 0 ? 0 : SWEEP_MIN_AGE_SECONDS);
        } else {
          // Under light load every job would be a batch of its own, each with a publish, a
          // confirm and a DELETE; a short linger lets the next few submits join it.
          if (buffer.length < o.batchSize && o.lingerMs > 0) await new Promise((r) => setTimeout(r, o.lingerMs));
          await publishBuffered();
        }
      } catch (err) {
        // An outage is not a fault of ours; anything else is.
        if (err instanceof DatabaseUnavailableError) o.log.warn('database unavailable; the outbox keeps the jobs for the next sweep', { err });
        else o.log.error('dispatcher error; the outbox keeps the jobs for the next sweep', { err, stack: (err as Error).stack });
        buffer = [];
      }
      if (buffer.length === 0 && sweep === null) for (const w of waiters) w();
      else drainWaiters.push(...waiters);
    }
  };
  const running = loop();

  return {
    enqueue(job) {
      if (buffer.length < MAX_BUFFERED) buffer.push(job);
      wake();
    },
    drained() {
      return new Promise<void>((resolve) => {
        drainWaiters.push(resolve);
        sweep = 'all';
        wake();
      });
    },
    async stop() {
      stopped = true;
      clearInterval(sweepTimer);
      wake();
      await running;
      for (const w of drainWaiters) w();
    },
  };
}
