// A webhook receiver for tests: a real HTTP server on loopback that records every request and
// answers as the test says; tests wait on the requests it gets, not on time.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** What to answer request n (from 0): a status, headers, a body, or a function writing the answer itself. */
export type Answer = { status: number; headers?: Record<string, string>; body?: string } | ((res: http.ServerResponse) => void);

export interface Receiver {
  url: string;
  received: Received[];
  answer: (req: Received, n: number) => Answer;
  /** Resolves once `count` requests have arrived. */
  waitFor(count: number): Promise<Received[]>;
  close(): Promise<void>;
}

export async function startReceiver(answer: Receiver['answer'] = () => ({ status: 200 })): Promise<Receiver> {
  const received: Received[] = [];
  let waiters: { count: number; resolve: (r: Received[]) => void }[] = [];
  const receiver: Receiver = {
    url: '',
    received,
    answer,
    waitFor(count) {
      if (received.length >= count) return Promise.resolve(received.slice());
      return new Promise((resolve) => waiters.push({ count, resolve }));
    },
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r = { path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      const n = received.length;
      received.push(r);
      const a = receiver.answer(r, n);
      if (typeof a === 'function') a(res);
      else res.writeHead(a.status, a.headers ?? {}).end(a.body ?? '');
      const ready = waiters.filter((w) => received.length >= w.count);
      waiters = waiters.filter((w) => received.length < w.count);
      for (const w of ready) w.resolve(received.slice());
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return receiver;
}

/** Retries `read` until `done` holds of its value (every 10 ms, up to `ms`); the last value. */
export async function eventually<T>(read: () => Promise<T>, done: (v: T) => boolean, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await read();
    if (done(v) || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 10));
  }
}
