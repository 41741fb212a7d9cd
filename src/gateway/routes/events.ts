// Server-Sent Events: of one generation (GET /v1/generations/{id}/events), and of all of a key's
// generations on one connection (GET /v1/events). Pushed by the database's change announcements,
// and re-read on every keep-alive tick too, so a stream never depends on LISTEN alone: after a
// database blip a terminal state reaches the client within one keep-alive interval. Streams per
// key are capped (stream-slots.ts); while the database is unreachable a stream stays open with
// keep-alives and catches up once it is back.
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { streamSSE, type SSEStreamingApi } from 'hono/streaming';
import { notFound } from '../../core/errors.ts';
import { isTerminal } from '../../core/status.ts';
import { DatabaseUnavailableError } from '../../store/errors.ts';
import type { Generation } from '../../store/generation.ts';
import { getGeneration } from '../../store/sql/getGeneration.ts';
import { getGenerationPreview } from '../../store/sql/getGenerationPreview.ts';
import { listChangedGenerations } from '../../store/sql/listChangedGenerations.ts';
import type { GatewayDeps, GatewayEnv } from '../deps.ts';
import { baseUrl } from '../http.ts';
import { EVENT_STREAM_EXAMPLE, EXAMPLE_ID } from '../examples.ts';
import { presentGeneration, problemResponse as problem } from '../present.ts';
import { validationHook } from '../validation.ts';

/** Changes read again after a resume or tick, before the cursor: commits land slightly out of order. */
const OVERLAP_MS = 2000;
/** Generations per read of the key stream; more wait for the next read, right after. */
const BATCH = 200;

const security = [{ bearer: [] }];

const tooMany = problem('This key holds the most event streams it may (see Retry-After)');
/** The event types of both streams, for their descriptions. */
const EVENT_TYPES =
  'Event types: `status` (the status changed; data: the whole generation, as GET /v1/generations/{id}), `progress` (a step ' +
  'or other change, same data), and `preview` while processing, at most about 2 per second: data ' +
  '`{"id": "<generation id>", "step": 12, "url": "data:image/png;base64,…"}`, a small image of the current latents (no event id: ' +
  'a resume does not resend previews). Comments (`: keep-alive`) come every keep-alive interval.';
const eventStream = { 'text/event-stream': { schema: z.string().openapi({ example: EVENT_STREAM_EXAMPLE }) } };

const generationEventsRoute = createRoute({
  method: 'get',
  path: '/generations/{id}/events',
  operationId: 'streamGenerationEvents',
  summary: 'Server-Sent Events of status and progress changes',
  description:
    'Each event carries the whole generation (as GET /v1/generations/{id}); `event` is `status` when the status changed, ' +
    'else `progress`; `id` is the generation version, so reconnecting with Last-Event-ID skips what was seen. ' +
    'The stream ends after a terminal status. ' +
    EVENT_TYPES,
  security,
  request: { params: z.object({ id: z.uuid().openapi({ param: { name: 'id', in: 'path' }, example: EXAMPLE_ID }) }) },
  responses: {
    200: { description: 'An event stream', content: eventStream },
    404: problem('Unknown'),
    429: tooMany,
  },
});

const keyEventsRoute = createRoute({
  method: 'get',
  path: '/events',
  operationId: 'streamEvents',
  summary: "Server-Sent Events of all of your generations' changes, on one connection",
  description:
    'First the current state of each unfinished generation, then every change: `event` is `status` or `progress`, the ' +
    'data is the whole generation (its `version`-ordered changes per id), `id` a cursor: reconnecting with Last-Event-ID ' +
    'sends what changed since (a change may come twice around a reconnection; compare `progress` and `status`). A new ' +
    'generation appears with its first change (claimed), or within a keep-alive interval. The stream does not end by itself. ' +
    EVENT_TYPES,
  security,
  responses: {
    200: { description: 'An event stream', content: eventStream },
    429: tooMany,
  },
});

/** Wakes a stream's loop on a change (or its client leaving), else after the keep-alive interval. */
function wakeable() {
  let pending = false;
  let wake: (() => void) | null = null;
  return {
    notify() {
      pending = true;
      wake?.();
    },
    /** True when notified (since the last wait), false when `ms` passed first. */
    wait(ms: number): Promise<boolean> {
      if (pending) {
        pending = false;
        return Promise.resolve(true);
      }
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          wake = null;
          resolve(false);
        }, ms);
        wake = () => {
          clearTimeout(timer);
          wake = null;
          pending = false;
          resolve(true);
        };
      });
    },
  };
}

export function eventRoutes(deps: GatewayDeps) {
  const app = new OpenAPIHono<GatewayEnv>({ defaultHook: validationHook });
  const { sseKeepAliveMs } = deps.settings;

  /** Runs `loop` as the stream's body; a database outage inside it only delays, anything else ends the stream, logged. */
  const stream = (c: Context, release: () => void, loop: (s: SSEStreamingApi, wake: ReturnType<typeof wakeable>) => Promise<void>) =>
    streamSSE(c, async (s) => {
      const wake = wakeable();
      s.onAbort(wake.notify);
      try {
        await loop(s, wake);
      } catch (err) {
        deps.log.error('event stream failed', { err, stack: (err as Error).stack, path: c.req.path });
      } finally {
        release();
      }
    });

  /** A read that answers undefined while the database is unreachable (the stream waits and retries). */
  const orLater = async <T>(read: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await read();
    } catch (err) {
      if (err instanceof DatabaseUnavailableError) return undefined;
      throw err;
    }
  };

  /** The `preview` event of a generation whose latest preview is newer than the stream sent; the step sent, or `sent` when none is there. */
  const sendPreview = async (s: SSEStreamingApi, g: Generation, sent: number | null | undefined): Promise<number | null | undefined> => {
    if (g.status !== 'processing' || g.previewStep === null || g.previewStep === sent) return sent;
    const preview = await orLater(() => getGenerationPreview(deps.db, g.id));
    if (!preview) return sent;
    await s.writeSSE({ event: 'preview', data: JSON.stringify({ id: g.id, step: preview.step, url: `data:image/png;base64,${preview.png.toString('base64')}` }) });
    return g.previewStep;
  };

  app.openapi(generationEventsRoute, async (c) => {
    const { id } = c.req.valid('param');
    const { apiKeyId } = c.get('principal');
    if (!(await getGeneration(deps.db, id, apiKeyId))) throw notFound();
    const release = await deps.streamSlots.open(apiKeyId);
    const resumeFrom = Number(c.req.header('Last-Event-ID'));
    const base = baseUrl(c, deps.settings);
    return stream(c, release, async (s, wake) => {
      let lastVersion = Number.isInteger(resumeFrom) && resumeFrom > 0 ? resumeFrom : 0;
      let lastStatus: string | null = null;
      let lastPreview: number | null | undefined;
      const unsubscribe = deps.changes.subscribe(id, wake.notify);
      try {
        // Read after subscribing, so no change falls between the read and the subscription.
        while (!s.aborted) {
          const g = await orLater(() => getGeneration(deps.db, id, apiKeyId));
          // null: gone for this key (the open mode's history was taken over by a new key).
          if (g === null) return;
          if (g && g.version > lastVersion) {
            await s.writeSSE({ id: String(g.version), event: g.status === lastStatus ? 'progress' : 'status', data: JSON.stringify(presentGeneration(g, base)) });
            lastVersion = g.version;
            lastStatus = g.status;
          }
          if (g) lastPreview = await sendPreview(s, g, lastPreview);
          if (g && isTerminal(g.status)) return;
          if (!(await wake.wait(sseKeepAliveMs)) && !s.aborted) await s.write(': keep-alive\n\n');
        }
      } finally {
        unsubscribe();
      }
    }) as never;
  });

  app.openapi(keyEventsRoute, async (c) => {
    const { apiKeyId } = c.get('principal');
    const release = await deps.streamSlots.open(apiKeyId);
    const resumeFrom = Number(c.req.header('Last-Event-ID'));
    const base = baseUrl(c, deps.settings);
    return stream(c, release, async (s, wake) => {
      // Last sent version and status per generation; terminal ones are forgotten once no read can return them.
      const sent = new Map<string, { version: number; status: string; updatedAt: number; preview?: number | null | undefined }>();
      const resumed = Number.isSafeInteger(resumeFrom) && resumeFrom > 0;
      let cursor = resumed ? resumeFrom : Date.now();
      let first = !resumed;
      const unsubscribe = deps.changes.subscribeOwner(apiKeyId, wake.notify);
      const send = async (g: Generation) => {
        const before = sent.get(g.id);
        if (before && before.version >= g.version) return;
        cursor = Math.max(cursor, g.updatedAt.getTime());
        await s.writeSSE({ id: String(cursor), event: before?.status === g.status ? 'progress' : 'status', data: JSON.stringify(presentGeneration(g, base)) });
        const preview = await sendPreview(s, g, before?.preview);
        sent.set(g.id, { version: g.version, status: g.status, updatedAt: g.updatedAt.getTime(), preview });
      };
      try {
        while (!s.aborted) {
          // The first read is the current state of what is unfinished; later ones, what changed since.
          const since = first ? null : new Date(cursor - OVERLAP_MS);
          const changed = await orLater(() => listChangedGenerations(deps.db, apiKeyId, since, BATCH));
          if (changed) {
            first = false;
            for (const g of changed) await send(g);
            for (const [id, g] of sent) if (isTerminal(g.status as Generation['status']) && g.updatedAt < cursor - OVERLAP_MS) sent.delete(id);
            if (changed.length === BATCH) continue;
          }
          if (!(await wake.wait(sseKeepAliveMs)) && !s.aborted) await s.write(': keep-alive\n\n');
        }
      } finally {
        unsubscribe();
      }
    }) as never;
  });

  return app;
}
