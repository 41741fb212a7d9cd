// TLS in front of the test's real PostgreSQL and RabbitMQ, which listen in plaintext: certificates
// made with the openssl CLI, and a proxy that terminates TLS and pipes the decrypted stream to the
// service on loopback. For PostgreSQL it speaks the SSLRequest preamble first, and it can stand in
// for password authentication, which the test server (trust on 127.0.0.1) never asks for.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';

export interface Certificates {
  dir: string;
  /** PEM of the CA that signed the server certificates. */
  ca: string;
  /** PEM of another CA, which signed nothing here. */
  otherCa: string;
  /** Server certificate and key by the name they were made under. */
  server: Record<string, { cert: string; key: string }>;
  remove(): Promise<void>;
}

/** Whether the openssl CLI is on PATH (the tests that need it say so when it is not). */
export function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

/**
 * A CA, a second unrelated CA, and one server certificate per entry of `servers`, signed by the
 * first CA: subject CN and, when given, subject alternative names (e.g. `IP:127.0.0.1`).
 */
export async function makeCertificates(servers: Record<string, { cn: string; san?: string }>): Promise<Certificates> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'itemgen-tls-'));
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  for (const name of ['ca', 'other-ca']) {
    openssl('req', '-x509', ...EC_KEY, '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=itemgen test ${name}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  }
  const server: Certificates['server'] = {};
  for (const [name, { cn, san }] of Object.entries(servers)) {
    await fs.writeFile(path.join(dir, `${name}.ext`), `basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n${san ? `subjectAltName=${san}\n` : ''}`);
    openssl('req', ...EC_KEY, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
    openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`);
    server[name] = { cert: await fs.readFile(path.join(dir, `${name}.crt`), 'utf8'), key: await fs.readFile(path.join(dir, `${name}.key`), 'utf8') };
  }
  return {
    dir,
    ca: await fs.readFile(path.join(dir, 'ca.crt'), 'utf8'),
    otherCa: await fs.readFile(path.join(dir, 'other-ca.crt'), 'utf8'),
    server,
    remove: () => fs.rm(dir, { recursive: true, force: true }),
  };
}

export interface TlsProxy {
  port: number;
  /** TLS sessions established (a handshake the client accepted). */
  sessions: number;
  /** Passwords clients sent when asked (postgres with requirePassword). */
  passwords: string[];
  close(): Promise<void>;
}

export interface TlsProxyOptions {
  cert: string;
  key: string;
  targetPort: number;
  /** Speak PostgreSQL's SSLRequest preamble before the handshake (and refuse clients that skip it). */
  postgres?: {
    /** Ask the client for this password (cleartext, inside TLS) before the session reaches the server; refuse others. */
    requirePassword?: string;
  };
}

/** Reads exact byte counts from a socket that is then handed on with nothing lost. */
function reader(socket: net.Socket) {
  let buffered = Buffer.alloc(0);
  let want: { n: number; resolve: (b: Buffer) => void } | null = null;
  const serve = () => {
    if (want && buffered.length >= want.n) {
      const { n, resolve } = want;
      want = null;
      const out = buffered.subarray(0, n);
      buffered = buffered.subarray(n);
      resolve(out);
    }
  };
  const onData = (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    serve();
  };
  socket.on('data', onData);
  return {
    read: (n: number) =>
      new Promise<Buffer>((resolve, reject) => {
        want = { n, resolve };
        socket.once('close', () => reject(new Error('closed')));
        serve();
      }),
    /** Stops reading; what was read ahead and not asked for. */
    release() {
      socket.pause();
      socket.off('data', onData);
      return buffered;
    },
  };
}

const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 4, 210, 22, 47]);

/** A PostgreSQL ErrorResponse (FATAL, with SQLSTATE and message). */
function pgError(code: string, message: string): Buffer {
  const fields = Buffer.from(`SFATAL\0C${code}\0M${message}\0\0`);
  const head = Buffer.alloc(5);
  head.write('E');
  head.writeInt32BE(4 + fields.length, 1);
  return Buffer.concat([head, fields]);
}

export async function startTlsProxy(o: TlsProxyOptions): Promise<TlsProxy> {
  const sockets = new Set<net.Socket>();
  const track = <S extends net.Socket>(s: S) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    return s;
  };
  const proxy: TlsProxy = { port: 0, sessions: 0, passwords: [], close: async () => {} };
  const pipe = (secure: tls.TLSSocket, first: Buffer[]) => {
    const upstream = track(net.connect(o.targetPort, '127.0.0.1'));
    for (const b of first) upstream.write(b);
    secure.pipe(upstream);
    upstream.pipe(secure);
    secure.on('close', () => upstream.destroy());
    upstream.on('close', () => secure.destroy());
  };
  const secured = (raw: net.Socket, then: (secure: tls.TLSSocket) => void) => {
    const secure = track(new tls.TLSSocket(raw, { isServer: true, cert: o.cert, key: o.key }));
    secure.once('secure', () => {
      proxy.sessions += 1;
      then(secure);
    });
  };

  const server = net.createServer(async (raw) => {
    track(raw);
    if (!o.postgres) {
      raw.pause();
      return secured(raw, (secure) => pipe(secure, []));
    }
    const plain = reader(raw);
    const request = await plain.read(8).catch(() => null);
    if (!request?.equals(SSL_REQUEST)) return raw.destroy();
    plain.release();
    raw.write('S');
    secured(raw, async (secure) => {
      const password = o.postgres?.requirePassword;
      if (password === undefined) return pipe(secure, []);
      const inner = reader(secure);
      try {
        const length = (await inner.read(4)).readInt32BE(0);
        const startup = Buffer.concat([Buffer.alloc(4), await inner.read(length - 4)]);
        startup.writeInt32BE(length, 0);
        // AuthenticationCleartextPassword.
        secure.write(Buffer.from([82, 0, 0, 0, 8, 0, 0, 0, 3]));
        const head = await inner.read(5);
        const body = await inner.read(head.readInt32BE(1) - 4);
        const sent = head[0] === 112 ? body.subarray(0, body.indexOf(0)).toString('utf8') : '';
        proxy.passwords.push(sent);
        if (sent !== password) return secure.end(pgError('28P01', 'password authentication failed (test proxy)'));
        pipe(secure, [startup, inner.release()]);
      } catch {
        secure.destroy();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.port = (server.address() as net.AddressInfo).port;
  proxy.close = () => {
    for (const s of sockets) s.destroy();
    return new Promise((resolve) => server.close(() => resolve()));
  };
  return proxy;
}
