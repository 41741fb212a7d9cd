// A TCP proxy on loopback that a test can cut and restore, to take a real service away from the
// code under test without stopping the one other tests share. Two kinds of outage: `cut` resets
// every connection and refuses new ones (a server gone); `blackhole` answers nothing and holds
// what is sent until `restore` (a network partition, as packets dropped and then retransmitted).
import net from 'node:net';

export interface CutOptions {
  /**
   * Refuse at the TCP level, as a host whose server is down: open connections are reset (RST, the
   * client reads ECONNRESET) and the port stops listening until restore() (ECONNREFUSED).
   * Default: open connections are closed, new ones accepted and closed at once (as a proxy in
   * front of a server that is gone). Clients fail differently: the postgres driver, e.g., retries a
   * refused connection quietly but fails the statement it had sent on one that is closed.
   */
  refuse?: boolean;
}

export interface TcpProxy {
  port: number;
  /** Drops every connection and refuses new ones until restore(). */
  cut(options?: CutOptions): void;
  /** Forwards nothing either way, accepting new connections but never answering, until restore(). */
  blackhole(): void;
  /** Back to forwarding; after a refusing cut, resolves once the port listens again. */
  restore(): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpProxy(targetHost: string, targetPort: number): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  /** The accepted sides, which a refusing cut resets. */
  const clients = new Set<net.Socket>();
  let listening: Promise<void> = Promise.resolve();
  let state: 'up' | 'cut' | 'blackhole' = 'up';
  /** Connections waiting for the blackhole to end: their upstream is opened then. */
  const held: (() => void)[] = [];

  const track = (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
  };
  /** Forwards from → to, holding data back while blackholed (flushed in order afterwards). */
  const forward = (from: net.Socket, to: () => net.Socket | null) => {
    const backlog: Buffer[] = [];
    const flush = () => {
      const target = to();
      if (state !== 'up' || !target) return;
      for (const chunk of backlog.splice(0)) target.write(chunk);
    };
    from.on('data', (chunk: Buffer) => {
      backlog.push(chunk);
      flush();
    });
    return flush;
  };

  const server = net.createServer((client) => {
    if (state === 'cut') return client.destroy();
    track(client);
    clients.add(client);
    client.on('close', () => clients.delete(client));
    let upstream: net.Socket | null = null;
    const toClient = () => client;
    const flushUp = forward(client, () => upstream);
    const open = () => {
      if (client.destroyed) return;
      upstream = net.connect(targetPort, targetHost);
      track(upstream);
      const flushDown = forward(upstream, toClient);
      resumers.add(flushDown);
      resumers.add(flushUp);
      upstream.on('connect', flushUp);
      client.on('close', () => {
        upstream?.destroy();
        resumers.delete(flushDown);
        resumers.delete(flushUp);
      });
      upstream.on('close', () => client.destroy());
    };
    if (state === 'blackhole') held.push(open);
    else open();
  });
  const resumers = new Set<() => void>();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    cut(options = {}) {
      state = 'cut';
      held.length = 0;
      if (options.refuse) {
        server.close();
        for (const c of clients) c.resetAndDestroy();
      }
      for (const s of sockets) s.destroy();
    },
    blackhole() {
      state = 'blackhole';
    },
    restore() {
      state = 'up';
      for (const open of held.splice(0)) open();
      for (const flush of resumers) flush();
      if (!server.listening) {
        listening = new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(port, '127.0.0.1', () => {
            server.off('error', reject);
            resolve();
          });
        });
      }
      return listening;
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => (server.listening ? server.close(() => resolve()) : resolve()));
    },
  };
}
