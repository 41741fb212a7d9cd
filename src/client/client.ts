// The typed client: openapi-fetch over the generated paths for the JSON calls, plain fetch for
// the event stream and image bytes. Only fetch, ReadableStream, TextDecoder and AbortSignal are
// used, so it runs in Node 20+, browsers and edge runtimes alike.
import createClient from 'openapi-fetch';
import { ItemgenError } from './errors.ts';
import { readEventStream, createSseParser } from './sse.ts';
import type { paths } from './schema.ts';
import { isTerminal, type Generation, type GenerationImage, type GenerationPage, type ListQuery, type Preview, type SubmitBody } from './types.ts';

export interface ClientOptions {
  /** Where the gateway listens, e.g. http://127.0.0.1:8080. */
  baseUrl: string;
  /** Sent as "Authorization: Bearer …"; absent for a gateway in open mode. */
  apiKey?: string | undefined;
  /** A fetch to use instead of globalThis.fetch (tests, proxies, instrumentation). */
  fetch?: typeof fetch;
}

export interface SubmitOptions {
  /** Same key and body return the same generation (safe retries of a submit). */
  idempotencyKey?: string;
  /** `Prefer: wait` (true) or `Prefer: wait=N` (seconds): the answer waits until the generation is terminal or N passes. */
  wait?: boolean | number;
  signal?: AbortSignal;
}

export interface WaitOptions {
  /** Each change of status or progress (the whole generation). */
  onProgress?: (g: Generation) => void;
  /** Each live preview while it runs. */
  onPreview?: (p: Preview) => void;
  signal?: AbortSignal;
  /** Give up after this long (ItemgenError `wait_timeout`); default: no limit. */
  timeoutMs?: number;
  /** Polling interval when the event stream is unavailable; default 1000 ms. */
  pollIntervalMs?: number;
  /** A stream silent this long is taken as dead and reopened (the server sends keep-alives every 15 s); default 45 s. */
  idleTimeoutMs?: number;
}

export interface RerunOptions {
  /** Rerun only image N of the batch: num_images 1 with that image's seed (same bytes). */
  image?: number;
  idempotencyKey?: string;
}

/** Streams failing in a row before wait() polls instead. */
const STREAM_ATTEMPTS = 3;
const SEED_RANGE = 2 ** 32;
const MAX_REDIRECTS = 5;

export type ItemgenClient = ReturnType<typeof createItemgenClient>;

export function createItemgenClient(options: ClientOptions) {
  const baseUrl = options.baseUrl.replace(/\/+$/, '');
  const origin = new URL(baseUrl).origin;
  const doFetch: typeof fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const auth: Record<string, string> = options.apiKey ? { Authorization: `Bearer ${options.apiKey}` } : {};
  const api = createClient<paths>({ baseUrl, fetch: (req) => doFetch(req), headers: auth });

  /** The data of an openapi-fetch answer, or its problem thrown; a network failure as `network_error`. */
  async function call<T>(run: () => Promise<{ data?: T; response: Response }>): Promise<T> {
    let result: { data?: T; response: Response };
    try {
      result = await run();
    } catch (err) {
      throw clientError(err, baseUrl);
    }
    if (!result.response.ok || result.data === undefined) {
      // openapi-fetch has read the body; a clone of the response still has it.
      throw problemOf(result.response, (result as { error?: unknown }).error);
    }
    return result.data;
  }

  /** A fetch of our own (stream, bytes): headers with the key only when `url` is the gateway's origin. */
  async function raw(url: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (new URL(url).origin === origin) for (const [k, v] of Object.entries(auth)) headers.set(k, v);
    try {
      return await doFetch(url, { ...init, headers });
    } catch (err) {
      throw clientError(err, baseUrl);
    }
  }

  const client = {
    baseUrl,

    /** POST /v1/generations. */
    submit(body: SubmitBody, o: SubmitOptions = {}): Promise<Generation> {
      const headers: Record<string, string> = {};
      if (o.idempotencyKey !== undefined) headers['Idempotency-Key'] = o.idempotencyKey;
      if (o.wait !== undefined && o.wait !== false) headers.Prefer = o.wait === true ? 'wait' : `wait=${Math.ceil(o.wait)}`;
      return call(() =>
        api.POST('/v1/generations', { body: body as never, headers, ...(o.signal ? { signal: o.signal } : {}) }),
      ) as Promise<Generation>;
    },

    /** GET /v1/generations/{id}. */
    get(id: string, signal?: AbortSignal): Promise<Generation> {
      return call(() => api.GET('/v1/generations/{id}', { params: { path: { id } }, ...(signal ? { signal } : {}) }));
    },

    /** GET /v1/generations: one page, newest first; pass `next_cursor` back as `cursor` for the next. */
    list(query: ListQuery = {}): Promise<GenerationPage> {
      return call(() => api.GET('/v1/generations', { params: { query } }));
    },

    /** Every generation (of `status`, when given), newest first, page after page. */
    async *listAll(query: Omit<ListQuery, 'cursor'> = {}): AsyncGenerator<Generation> {
      let cursor: string | undefined;
      do {
        const page = await client.list({ ...query, ...(cursor ? { cursor } : {}) });
        yield* page.data;
        cursor = page.next_cursor ?? undefined;
      } while (cursor);
    },

    /** POST /v1/generations/{id}/cancel: the canceled generation (409 `already_finished` when it is terminal). */
    cancel(id: string): Promise<Generation> {
      return call(() => api.POST('/v1/generations/{id}/cancel', { params: { path: { id } } }));
    },

    /** DELETE /v1/generations/{id}: removes a finished generation and its images (again: no error; 409 while unfinished). */
    async delete(id: string): Promise<void> {
      const res = await raw(`${baseUrl}/v1/generations/${encodeURIComponent(id)}`, { method: 'DELETE' });
      if (!res.ok) throw await ItemgenError.fromResponse(res);
      await res.body?.cancel().catch(() => {});
    },

    /**
     * Follows a generation until it is terminal and resolves with it (completed, failed or
     * canceled: check `status`). Reads its event stream, resuming with Last-Event-ID after a
     * dropped connection; polls instead when streams are refused (429), unavailable or keep failing.
     */
    async wait(id: string, o: WaitOptions = {}): Promise<Generation> {
      const deadline = o.timeoutMs === undefined ? Infinity : Date.now() + o.timeoutMs;
      const pollMs = o.pollIntervalMs ?? 1000;
      const idleMs = o.idleTimeoutMs ?? 45_000;
      const parser = createSseParser();
      let failures = 0;
      let lastSeen = '';
      const seen = (g: Generation) => {
        const key = `${g.status}:${g.progress.step}:${g.queue_position ?? ''}`;
        if (key !== lastSeen) o.onProgress?.(g);
        lastSeen = key;
      };
      const check = () => {
        if (o.signal?.aborted) throw ItemgenError.client('aborted', 'The wait was aborted.', o.signal.reason);
        if (Date.now() >= deadline) throw ItemgenError.client('wait_timeout', `The generation ${id} did not finish within ${o.timeoutMs} ms.`);
      };
      const pause = (ms: number) => sleep(Math.min(ms, Math.max(0, deadline - Date.now())), o.signal);

      while (failures < STREAM_ATTEMPTS) {
        check();
        const attempt = new AbortController();
        const stop = () => attempt.abort();
        o.signal?.addEventListener('abort', stop, { once: true });
        const untilDeadline = Number.isFinite(deadline) ? setTimeout(stop, Math.max(0, deadline - Date.now())) : undefined;
        let idle: ReturnType<typeof setTimeout> | undefined;
        const alive = () => {
          clearTimeout(idle);
          idle = setTimeout(stop, idleMs);
        };
        try {
          const headers: Record<string, string> = { Accept: 'text/event-stream' };
          if (parser.lastEventId) headers['Last-Event-ID'] = parser.lastEventId;
          const res = await raw(`${baseUrl}/v1/generations/${encodeURIComponent(id)}/events`, { headers, signal: attempt.signal });
          const type = res.headers.get('content-type') ?? '';
          if (!res.ok || !type.startsWith('text/event-stream') || !res.body) {
            // The generation's own answer (404, 401) is final; anything else means: poll.
            if (res.status === 404 || res.status === 401 || res.status === 403) throw await ItemgenError.fromResponse(res);
            await res.body?.cancel().catch(() => {});
            break;
          }
          alive();
          let changes = 0;
          for await (const event of readEventStream(tap(res.body, alive), parser)) {
            if (event.event === 'preview') {
              o.onPreview?.(JSON.parse(event.data) as Preview);
              continue;
            }
            const g = JSON.parse(event.data) as Generation;
            changes++;
            failures = 0;
            seen(g);
            if (isTerminal(g.status)) return g;
          }
          // Ended without a terminal event (e.g. it had been sent before a resume): ask.
          const g = await client.get(id);
          if (isTerminal(g.status)) return g;
          if (changes === 0) {
            // A stream that ends at once, again and again, is no stream: count it, and do not spin.
            failures++;
            await pause((parser.retryMs ?? 250) * failures);
          }
        } catch (err) {
          if (err instanceof ItemgenError && err.status !== 0) throw err;
          check();
          failures++;
          await pause((parser.retryMs ?? 250) * failures);
        } finally {
          clearTimeout(idle);
          clearTimeout(untilDeadline);
          o.signal?.removeEventListener('abort', stop);
        }
      }

      // Polling: streams are refused or keep failing.
      for (;;) {
        check();
        try {
          const g = await client.get(id, o.signal);
          seen(g);
          if (isTerminal(g.status)) return g;
        } catch (err) {
          if (err instanceof ItemgenError && err.status !== 0 && err.status !== 429 && err.status < 500) throw err;
        }
        await pause(pollMs);
      }
    },

    /**
     * The PNG bytes of image `index`. Follows the image's URL; a redirect to another origin (a
     * signed storage link) is followed without the API key.
     */
    async download(idOrGeneration: string | Generation, index = 0): Promise<Uint8Array> {
      const g = typeof idOrGeneration === 'string' ? null : idOrGeneration;
      const id = g ? g.id : (idOrGeneration as string);
      let url = g?.images?.[index]?.url ?? `${baseUrl}/v1/generations/${encodeURIComponent(id)}/images/${index}`;
      for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
        const res = await raw(url, { redirect: 'manual' });
        if (res.type === 'opaqueredirect') {
          // A browser hides the target; its own redirect handling drops Authorization across origins.
          return bytesOf(await raw(url, { redirect: 'follow' }));
        }
        const location = res.status >= 300 && res.status < 400 ? res.headers.get('location') : null;
        if (!location) return bytesOf(res);
        await res.body?.cancel().catch(() => {});
        url = new URL(location, url).href;
      }
      throw ItemgenError.client('too_many_redirects', `More than ${MAX_REDIRECTS} redirects for image ${index} of ${id}.`);
    },

    /**
     * Submits a generation again with the same parameters (seed included: same images). With
     * `image: N`, only image N of its batch: num_images 1 and image N's seed.
     */
    async rerun(id: string, o: RerunOptions = {}): Promise<Generation> {
      const g = await client.get(id);
      const params: SubmitBody = { ...g.params };
      if (o.image !== undefined) {
        if (!Number.isInteger(o.image) || o.image < 0 || o.image >= g.params.num_images) {
          throw ItemgenError.client('invalid_image', `The generation has ${g.params.num_images} image(s) (0 to ${g.params.num_images - 1}); there is no image ${o.image}.`);
        }
        params.seed = imageSeed(g, o.image);
        params.num_images = 1;
      }
      return client.submit(params, o.idempotencyKey === undefined ? {} : { idempotencyKey: o.idempotencyKey });
    },

    /** GET /v1/webhooks/default/secret: the `whsec_…` key this API key's webhooks are signed with. */
    async webhookSecret(): Promise<string> {
      const res = await raw(`${baseUrl}/v1/webhooks/default/secret`, { headers: { Accept: 'application/json' } });
      if (!res.ok) throw await ItemgenError.fromResponse(res);
      return ((await res.json()) as { key: string }).key;
    },
  };
  return client;
}

/** The seed of image `index`: as reported per image, else params.seed + index (mod 2^32). */
export function imageSeed(g: Generation, index: number): number {
  const reported = (g.images?.[index] as GenerationImage | undefined)?.seed;
  return reported ?? (g.params.seed + index) % SEED_RANGE;
}

async function bytesOf(res: Response): Promise<Uint8Array> {
  if (!res.ok) throw await ItemgenError.fromResponse(res);
  return new Uint8Array(await res.arrayBuffer());
}

function problemOf(res: Response, body: unknown): ItemgenError {
  const p = body && typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>) : {};
  return new ItemgenError({
    ...p,
    status: res.status,
    code: typeof p.code === 'string' ? p.code : `http_${res.status}`,
    detail: typeof p.detail === 'string' ? p.detail : `HTTP ${res.status}`,
  });
}

function clientError(err: unknown, baseUrl: string): ItemgenError {
  if (err instanceof ItemgenError) return err;
  const e = err as Error;
  if (e?.name === 'AbortError' || e?.name === 'TimeoutError') return ItemgenError.client('aborted', 'The request was aborted.', err);
  return ItemgenError.client('network_error', `The gateway at ${baseUrl} could not be reached (${e?.message ?? String(err)}).`, err);
}

/** The same stream, calling `onChunk` at each chunk (the idle timer). */
function tap(body: ReadableStream<Uint8Array>, onChunk: () => void): ReadableStream<Uint8Array> {
  return body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        onChunk();
        controller.enqueue(chunk);
      },
    }),
  );
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
  });
}
