// The runner's own small HTTP server, on its own port: GET /healthz for the orchestrator's probes
// (200 while the worker consumes, 503 while it starts or stops) and GET /metrics for Prometheus.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { WorkerState } from './worker.ts';

export interface HealthServer {
  url: string;
  close(): Promise<void>;
}

export async function startHealthServer(options: { host: string; port: number; state: () => WorkerState; registry: Registry }): Promise<HealthServer> {
  const server = http.createServer((req, res) => {
    const route = `${req.method} ${new URL(req.url ?? '/', 'http://runner').pathname}`;
    if (route === 'GET /healthz') {
      const state = options.state();
      res.writeHead(state === 'running' ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify({ status: state }));
      return;
    }
    if (route === 'GET /metrics') {
      options.registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': options.registry.contentType });
          res.end(text);
        },
        (err: Error) => {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(`metrics unavailable: ${err.message}\n`);
        },
      );
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const { address, port } = server.address() as AddressInfo;
  const host = address.includes(':') ? `[${address}]` : address;
  return {
    url: `http://${host}:${port}`,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
