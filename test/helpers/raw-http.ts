// A hand-written HTTP/1.1 client on a plain socket, for what fetch cannot do: send a request in
// pieces, stall halfway, or vanish mid-body.
import net from 'node:net';

export interface RawConnection {
  write(text: string): void;
  destroy(): void;
  /** Everything the server sent, once it closed the connection. */
  closed: Promise<string>;
}

export function rawConnection(url: string): Promise<RawConnection> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname.replace(/^\[|\]$/g, ''));
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (received += chunk));
    socket.on('error', () => {});
    const closed = new Promise<string>((done) => socket.on('close', () => done(received)));
    socket.once('connect', () =>
      resolve({
        write: (text) => socket.write(text),
        destroy: () => socket.destroy(),
        closed,
      }),
    );
    socket.once('error', reject);
  });
}

/** Status code, headers (lower-cased) and body of the first response in `raw`. */
export function parseResponse(raw: string): { status: number; headers: Record<string, string>; body: string } {
  const end = raw.indexOf('\r\n\r\n');
  const [statusLine, ...lines] = raw.slice(0, end < 0 ? raw.length : end).split('\r\n');
  const headers = Object.fromEntries(
    lines.map((l) => {
      const i = l.indexOf(':');
      return [l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim()];
    }),
  );
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine ?? '')?.[1] ?? 0), headers, body: end < 0 ? '' : raw.slice(end + 4) };
}
