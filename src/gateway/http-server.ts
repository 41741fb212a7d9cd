// The gateway's HTTP/1.1 server: Node's, with the app as its request listener (@hono/node-server)
// and the limits on slow clients. What Node or the adapter refuse before the app sees a request
// (malformed HTTP, oversized headers, slow headers, a bad Host) is answered as problem+json too.
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { getRequestListener } from '@hono/node-server';
import { AppError } from '../core/errors.ts';
import type { Config } from './config.ts';
import { problemJson, problemTitle } from './problem.ts';

/** Node's codes for what it refuses before a request exists, as problems. */
function clientProblem(code: string | undefined): AppError {
  if (code === 'HPE_HEADER_OVERFLOW') return new AppError(431, 'headers_too_large', 'The request line or headers are larger than this server accepts.');
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return new AppError(408, 'request_timeout', 'The request headers did not arrive in time.');
  return new AppError(400, 'malformed_request', 'The request is not valid HTTP/1.1.');
}

function answerOnSocket(socket: Socket, err: AppError) {
  const body = problemJson(err);
  socket.end(
    `HTTP/1.1 ${err.status} ${problemTitle(err.status)}\r\nContent-Type: application/problem+json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

export function listen(fetch: (req: Request, env: unknown) => Response | Promise<Response>, config: Config): Promise<Server & { address(): AddressInfo }> {
  const listener = getRequestListener(fetch, {
    // The adapter refuses a request it cannot turn into a URL (no or a bad Host, a backslash path).
    errorHandler: (err) =>
      new Response(problemJson(new AppError(400, 'malformed_request', `The request cannot be read: ${(err as Error).message}.`)), {
        status: 400,
        headers: { 'Content-Type': 'application/problem+json' },
      }),
  });
  const server = createServer(
    {
      // A client must send its headers within headersTimeout; the body has its own deadline
      // (readBody), with requestTimeout behind both. Node checks these every
      // connectionsCheckingInterval (30 s by default): often enough for them to mean what they say.
      headersTimeout: config.headersTimeoutMs,
      requestTimeout: config.headersTimeoutMs + config.bodyTimeoutMs + 5000,
      connectionsCheckingInterval: Math.min(1000, config.headersTimeoutMs),
      // A request without Host is the adapter's to refuse (below), as a problem, not Node's bare 400.
      requireHostHeader: false,
    },
    listener,
  );
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (err.code === 'ECONNRESET' || !socket.writable) return socket.destroy();
    answerOnSocket(socket, clientProblem(err.code));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve(server as Server & { address(): AddressInfo }));
  });
}

export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    // Event streams are long-lived; end them so close() does not wait for clients.
    server.closeAllConnections();
  });
}
