// The page's one event stream, GET /v1/events: every change of every generation of this key. A
// lost connection is reopened with Last-Event-ID (the parser keeps the last id across
// connections), after a growing pause; a stream silent for three keep-alive intervals is taken as
// dead. Read with fetch, not EventSource, which cannot send the API key.
import { createSseParser, readEventStream } from '../../client/sse.ts';
import type { Generation, Preview } from '../../client/types.ts';
import type { Session } from './session.ts';

export type LiveState = 'connecting' | 'live' | 'reconnecting';

export interface LiveHandlers {
  generation(g: Generation): void;
  preview(p: Preview): void;
  state(s: LiveState): void;
  /** The key stopped being accepted (revoked): the stream gives up. */
  unauthorized(): void;
}

const IDLE_MS = 45_000;
const MAX_PAUSE_MS = 15_000;

export function followEvents(session: Session, on: LiveHandlers): () => void {
  const stopped = new AbortController();
  const parser = createSseParser();
  void (async () => {
    let failures = 0;
    while (!stopped.signal.aborted) {
      const attempt = new AbortController();
      const abort = () => attempt.abort();
      stopped.signal.addEventListener('abort', abort, { once: true });
      let idle: ReturnType<typeof setTimeout> | undefined;
      const alive = () => {
        clearTimeout(idle);
        idle = setTimeout(abort, IDLE_MS);
      };
      try {
        on.state(failures === 0 ? 'connecting' : 'reconnecting');
        const headers = session.headers({ Accept: 'text/event-stream' });
        if (parser.lastEventId) headers['Last-Event-ID'] = parser.lastEventId;
        const res = await fetch('/v1/events', { headers, signal: attempt.signal, cache: 'no-store' });
        if (res.status === 401) {
          on.unauthorized();
          return;
        }
        if (res.ok && res.body) {
          alive();
          on.state('live');
          const body = res.body.pipeThrough(
            new TransformStream<Uint8Array, Uint8Array>({
              transform(chunk, out) {
                alive();
                out.enqueue(chunk);
              },
            }),
          );
          for await (const event of readEventStream(body, parser)) {
            failures = 0;
            if (event.event === 'preview') on.preview(JSON.parse(event.data) as Preview);
            else on.generation(JSON.parse(event.data) as Generation);
          }
        } else {
          await res.body?.cancel().catch(() => {});
        }
      } catch {
        // A dropped connection or an abort: both end in the pause below.
      } finally {
        clearTimeout(idle);
        stopped.signal.removeEventListener('abort', abort);
      }
      if (stopped.signal.aborted) return;
      failures++;
      on.state('reconnecting');
      const pause = Math.min(MAX_PAUSE_MS, (parser.retryMs ?? 500) * 2 ** (failures - 1)) * (0.5 + Math.random() / 2);
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  })();
  return () => stopped.abort();
}
