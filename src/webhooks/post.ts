// One webhook POST: connects only through the policy's lookup, gives up after `timeoutMs` (connect
// and answer together), reads at most MAX_ANSWER_BYTES of the answer and never follows redirects.
import http from 'node:http';
import https from 'node:https';
import { guardedLookup, TargetRefused, urlRefusal, type TargetPolicy } from './policy.ts';

/** Answers are read this far (to record an excerpt), then the connection is dropped. */
export const MAX_ANSWER_BYTES = 1024;

export type PostOutcome =
  | { kind: 'answered'; status: number; headers: http.IncomingHttpHeaders; excerpt: string }
  | { kind: 'refused'; error: string }
  | { kind: 'failed'; error: string };

export async function postWebhook(
  url: string,
  headers: Record<string, string>,
  body: string,
  o: { policy: TargetPolicy; timeoutMs: number; signal?: AbortSignal },
): Promise<PostOutcome> {
  // Literal addresses never reach `lookup`; names are checked there, at connect time.
  const why = urlRefusal(url, o.policy);
  if (why) return { kind: 'refused', error: `refused: ${why}` };
  const target = new URL(url);
  const client = target.protocol === 'https:' ? https : http;
  return new Promise<PostOutcome>((resolve) => {
    let settled = false;
    const finish = (outcome: PostOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', interrupted);
      req.destroy();
      resolve(outcome);
    };
    const req = client.request(
      target,
      {
        method: 'POST',
        headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
        lookup: guardedLookup(o.policy),
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        const done = () =>
          finish({ kind: 'answered', status: res.statusCode ?? 0, headers: res.headers, excerpt: Buffer.concat(chunks).subarray(0, MAX_ANSWER_BYTES).toString('utf8') });
        res.on('data', (chunk: Buffer) => {
          chunks.push(chunk);
          size += chunk.length;
          if (size >= MAX_ANSWER_BYTES) done();
        });
        res.on('end', done);
        res.on('error', done);
      },
    );
    const timer = setTimeout(() => finish({ kind: 'failed', error: `no answer within ${o.timeoutMs} ms` }), o.timeoutMs);
    const interrupted = () => finish({ kind: 'failed', error: 'interrupted: the gateway stopped' });
    if (o.signal?.aborted) interrupted();
    o.signal?.addEventListener('abort', interrupted, { once: true });
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err instanceof TargetRefused) finish({ kind: 'refused', error: `refused at connect: ${err.message}` });
      else finish({ kind: 'failed', error: err.code ? `${err.code}: ${err.message}` : err.message });
    });
    req.end(body);
  });
}
