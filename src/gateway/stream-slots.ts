// The cap on event streams per key, shared by every gateway instance through the database
// (docs/architecture.md, decision 9): each open stream holds a row that this instance renews every
// keep-alive interval, so a stream of an instance that died stops counting within three of them.
// One key could otherwise hold every request slot of the service with long-lived streams.
import { AppError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { closeEventStream } from '../store/sql/closeEventStream.ts';
import { openEventStream } from '../store/sql/openEventStream.ts';
import { renewEventStreams } from '../store/sql/renewEventStreams.ts';
import type { Queryable } from '../store/types.ts';

export interface StreamSlots {
  /** A slot for one more stream of the key, or a 429 problem when it holds `max`; release it when the stream ends. */
  open(apiKeyId: string): Promise<() => void>;
  stop(): Promise<void>;
}

export function startStreamSlots(o: { db: Queryable; max: number; keepAliveMs: number; log: Logger }): StreamSlots {
  const ttlSeconds = Math.max(1, Math.ceil((3 * o.keepAliveMs) / 1000));
  const held = new Set<string>();
  const renew = () => {
    if (held.size === 0) return;
    renewEventStreams(o.db, [...held], ttlSeconds).catch((err) =>
      o.log.warn('could not renew the event streams; they count until they run out', { err, streams: held.size }),
    );
  };
  const timer = setInterval(renew, o.keepAliveMs);
  timer.unref();
  return {
    async open(apiKeyId) {
      const id = await openEventStream(o.db, apiKeyId, o.max, ttlSeconds);
      if (!id) {
        throw new AppError(
          429,
          'too_many_streams',
          `This API key holds ${o.max} event streams, the most it may; close one, or follow all of its generations on one stream (GET /v1/events).`,
          { limit: o.max },
          { 'Retry-After': String(ttlSeconds) },
        );
      }
      held.add(id);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        held.delete(id);
        closeEventStream(o.db, id).catch((err) => o.log.debug('could not close an event stream row; it runs out', { err }));
      };
    },
    async stop() {
      clearInterval(timer);
    },
  };
}
