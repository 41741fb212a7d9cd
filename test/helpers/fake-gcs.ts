// A fake Google Cloud Storage on loopback that speaks the part of the JSON API the real
// @google-cloud/storage client uses for single-request uploads, metadata, downloads and deletes,
// and serves V4 signed URLs (checking the RSA signature when given the signer's public key), so
// storage tests drive the real client with no network. It can fail requests and misreport
// checksums on demand.
import { createHash, verify, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeObject {
  data: Buffer;
  /** The object resource as the JSON API returns it (crc32c, md5Hash, size, generation, metadata, …). */
  metadata: Record<string, unknown>;
}

export interface FakeGcsOptions {
  /** Signed URLs must carry a valid signature by this key; without it only their presence and expiry are checked. */
  signerPublicKey?: KeyObject | string;
  /** Buckets whose objects anyone may read at {endpoint}/{bucket}/{object}. */
  publicBuckets?: string[];
  /** The fake's clock for signed URL expiry, in ms since the epoch. */
  now?: () => number;
}

export interface FakeGcs {
  endpoint: string;
  /** Stored objects, by "{bucket}/{object name}". */
  objects: Map<string, FakeObject>;
  /** The next n requests fail with this status: 'before' doing anything, or 'after' doing what was asked (a lost response). */
  failNext(n: number, status?: number, when?: 'before' | 'after'): void;
  /** The next n uploads are stored but answered with a wrong crc32c, as if the bytes had been damaged on the way. */
  misreportCrc32cNext(n: number): void;
  /** Every request seen, as "METHOD path?query". */
  requests: string[];
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 64 * 1024 * 1024;

export async function startFakeGcs(options: FakeGcsOptions = {}): Promise<FakeGcs> {
  const objects = new Map<string, FakeObject>();
  const requests: string[] = [];
  const now = options.now ?? Date.now;
  let failures = { left: 0, status: 503, when: 'before' as 'before' | 'after' };
  let misreports = 0;
  let nextGeneration = Date.now() * 1000;

  const route = (req: IncomingMessage, url: URL, body: Buffer): Reply => {
    const path = url.pathname.split('/').map(decodeURIComponent);

    // POST /upload/storage/v1/b/{bucket}/o?uploadType=multipart&name=…
    if (req.method === 'POST' && url.pathname.startsWith('/upload/storage/v1/b/') && path[6] === 'o' && path.length === 7) {
      if (url.searchParams.get('uploadType') !== 'multipart') return jsonError(501, 'the fake supports multipart uploads only');
      const parts = parseMultipart(body, boundaryOf(req.headers['content-type']));
      const [metaPart, mediaPart] = parts;
      if (parts.length !== 2 || !metaPart || !mediaPart) return jsonError(400, `expected 2 multipart parts, got ${parts.length}`);
      const resource = JSON.parse(metaPart.body.toString('utf8')) as Record<string, unknown>;
      const bucket = path[5]!;
      const name = url.searchParams.get('name') ?? (resource.name as string | undefined);
      if (!name) return jsonError(400, 'no object name');
      const existing = objects.get(`${bucket}/${name}`);
      const precondition = url.searchParams.get('ifGenerationMatch');
      if (precondition !== null && precondition !== String(existing ? existing.metadata.generation : 0)) {
        return jsonError(412, 'At least one of the pre-conditions you specified did not hold.', 'conditionNotMet');
      }
      const data = mediaPart.body;
      const generation = String(nextGeneration++);
      const stamp = new Date(now()).toISOString();
      const metadata: Record<string, unknown> = {
        kind: 'storage#object',
        id: `${bucket}/${name}/${generation}`,
        name,
        bucket,
        generation,
        metageneration: '1',
        contentType: (resource.contentType as string | undefined) ?? mediaPart.headers['content-type'] ?? 'application/octet-stream',
        size: String(data.length),
        md5Hash: createHash('md5').update(data).digest('base64'),
        crc32c: crc32cBase64(data),
        etag: createHash('md5').update(generation).digest('base64'),
        timeCreated: stamp,
        updated: stamp,
        storageClass: 'STANDARD',
        ...(resource.cacheControl !== undefined ? { cacheControl: resource.cacheControl } : {}),
        ...(resource.metadata !== undefined ? { metadata: resource.metadata } : {}),
      };
      objects.set(`${bucket}/${name}`, { data, metadata });
      if (misreports > 0) {
        misreports--;
        return json(200, { ...metadata, crc32c: crc32cBase64(Buffer.concat([data, Buffer.from('damaged')])) });
      }
      return json(200, metadata);
    }

    // /storage/v1/b/{bucket}/o/{object}: metadata, media (alt=media), delete
    if (url.pathname.startsWith('/storage/v1/b/') && path[5] === 'o' && path.length === 7) {
      const key = `${path[4]}/${path[6]}`;
      const object = objects.get(key);
      if (!object) return jsonError(404, `No such object: ${key}`, 'notFound');
      if (req.method === 'DELETE') {
        objects.delete(key);
        return { status: 204 };
      }
      if (req.method !== 'GET') return jsonError(405, `${req.method} is not supported here`);
      if (url.searchParams.get('alt') !== 'media') return json(200, object.metadata);
      return {
        status: 200,
        headers: {
          'content-type': String(object.metadata.contentType),
          'x-goog-hash': `crc32c=${object.metadata.crc32c},md5=${object.metadata.md5Hash}`,
          'x-goog-stored-content-encoding': 'identity',
          'x-goog-generation': String(object.metadata.generation),
        },
        body: object.data,
      };
    }

    // GET /{bucket}/{object}: the XML API's reads, by signed URL (V4) or of a public bucket
    if (req.method === 'GET' && path.length >= 3 && path[1]) {
      const bucket = path[1];
      if (url.searchParams.has('X-Goog-Signature')) {
        const refusal = checkSignedUrl(req, url, options.signerPublicKey, now());
        if (refusal) return xmlError(refusal.status, refusal.code, refusal.message);
      } else if (!options.publicBuckets?.includes(bucket)) {
        return xmlError(403, 'AccessDenied', 'Anonymous caller does not have storage.objects.get access.');
      }
      const object = objects.get(`${bucket}/${path.slice(2).join('/')}`);
      if (!object) return xmlError(404, 'NoSuchKey', 'The specified key does not exist.');
      return {
        status: 200,
        headers: {
          'content-type': String(object.metadata.contentType),
          ...(object.metadata.cacheControl ? { 'cache-control': String(object.metadata.cacheControl) } : {}),
        },
        body: object.data,
      };
    }

    return jsonError(404, `the fake does not know ${req.method} ${url.pathname}`);
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    requests.push(`${req.method} ${url.pathname}${url.search}`);
    const injected = failures.left > 0 ? failures : null;
    if (injected) failures = { ...failures, left: failures.left - 1 };
    readBody(req)
      .then((body) => {
        if (injected?.when === 'before') return jsonError(injected.status, 'injected failure');
        const reply = route(req, url, body);
        // A lost response: what was asked happened, but the client hears only a failure.
        return injected ? jsonError(injected.status, 'injected failure after the request took effect') : reply;
      })
      .catch((err: Error) => jsonError(500, `fake-gcs: ${err.message}`))
      .then(({ status, headers = {}, body }) => {
        res.writeHead(status, { ...headers, ...(body ? { 'content-length': body.length } : {}) }).end(body);
      });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    objects,
    requests,
    failNext(n, status = 503, when = 'before') {
      failures = { left: n, status, when };
    },
    misreportCrc32cNext(n) {
      misreports = n;
    },
    close() {
      return new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // The client keeps connections alive; without this, close would wait for them to idle out.
        server.closeAllConnections();
      });
    },
  };
}

/**
 * Why a V4 signed URL is refused, or null when it is good: every signing parameter present, not
 * expired, and (given the key) the signature over the canonical request verifies. The canonical
 * request is rebuilt from what arrived, as GCS does:
 * https://cloud.google.com/storage/docs/authentication/canonical-requests
 */
function checkSignedUrl(req: IncomingMessage, url: URL, publicKey: KeyObject | string | undefined, nowMs: number) {
  const q = url.searchParams;
  const required = ['X-Goog-Algorithm', 'X-Goog-Credential', 'X-Goog-Date', 'X-Goog-Expires', 'X-Goog-SignedHeaders', 'X-Goog-Signature'];
  const missing = required.filter((p) => !q.get(p));
  if (missing.length > 0) return { status: 400, code: 'AuthorizationQueryParametersError', message: `missing ${missing.join(', ')}` };
  if (q.get('X-Goog-Algorithm') !== 'GOOG4-RSA-SHA256') {
    return { status: 400, code: 'AuthorizationQueryParametersError', message: 'unsupported algorithm' };
  }
  const date = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(q.get('X-Goog-Date')!);
  const expires = Number(q.get('X-Goog-Expires'));
  if (!date || !Number.isInteger(expires) || expires <= 0 || expires > 604_800) {
    return { status: 400, code: 'AuthorizationQueryParametersError', message: 'bad X-Goog-Date or X-Goog-Expires' };
  }
  const signedAt = Date.UTC(+date[1]!, +date[2]! - 1, +date[3]!, +date[4]!, +date[5]!, +date[6]!);
  if (nowMs > signedAt + expires * 1000) return { status: 400, code: 'ExpiredToken', message: 'The provided token has expired.' };
  if (!publicKey) return null;

  const signedHeaders = q.get('X-Goog-SignedHeaders')!;
  const headerLines = signedHeaders.split(';').map((name) => {
    const value = name === 'host' ? new URL(`http://${req.headers.host}`).hostname : String(req.headers[name] ?? '');
    return `${name}:${value.trim().replace(/\s{2,}/g, ' ')}\n`;
  });
  const query = [...q.entries()]
    .filter(([k]) => k !== 'X-Goog-Signature')
    .map(([k, v]) => [rfc3986(k), rfc3986(v)] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const canonicalRequest = [req.method, url.pathname, query, headerLines.join(''), signedHeaders, 'UNSIGNED-PAYLOAD'].join('\n');
  const credential = q.get('X-Goog-Credential')!;
  const scope = credential.slice(credential.indexOf('/') + 1);
  const stringToSign = [
    'GOOG4-RSA-SHA256',
    q.get('X-Goog-Date'),
    scope,
    createHash('sha256').update(canonicalRequest).digest('hex'),
  ].join('\n');
  const signature = Buffer.from(q.get('X-Goog-Signature')!, 'hex');
  if (!verify('sha256', Buffer.from(stringToSign), publicKey, signature)) {
    return { status: 403, code: 'SignatureDoesNotMatch', message: 'The request signature we calculated does not match the signature you provided.' };
  }
  return null;
}

const rfc3986 = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new Error('request body too large for the fake');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function boundaryOf(contentType: string | undefined): string {
  const m = /^multipart\/related;.*\bboundary="?([^";]+)"?/i.exec(contentType ?? '');
  if (!m) throw new Error(`not multipart/related: ${contentType}`);
  return m[1]!;
}

/** The parts of a multipart/related body (RFC 2046): --boundary CRLF headers CRLF CRLF body, CRLF --boundary … --boundary--. */
function parseMultipart(body: Buffer, boundary: string) {
  const first = Buffer.from(`--${boundary}`);
  const between = Buffer.from(`\r\n--${boundary}`);
  if (body.indexOf(first) !== 0) throw new Error('multipart body does not start with its boundary');
  const parts: { headers: Record<string, string>; body: Buffer }[] = [];
  let pos = first.length;
  // Each pass moves past one delimiter, so the loop ends within the body.
  while (pos < body.length && body.subarray(pos, pos + 2).toString() !== '--') {
    const start = pos + 2; // the CRLF that ends the delimiter line
    const end = body.indexOf(between, start);
    if (end < 0) throw new Error('multipart body has no closing boundary');
    const part = body.subarray(start, end);
    const headerEnd = part.indexOf('\r\n\r\n');
    if (headerEnd < 0) throw new Error('multipart part without a blank line after its headers');
    const headers: Record<string, string> = {};
    for (const line of part.subarray(0, headerEnd).toString('utf8').split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    parts.push({ headers, body: Buffer.from(part.subarray(headerEnd + 4)) });
    pos = end + between.length;
  }
  return parts;
}

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), written here rather than taken from the
// client so that the client's checksum is checked against an independent one.
const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export function crc32cBase64(data: Buffer): string {
  let crc = 0xffffffff;
  for (const byte of data) crc = CRC32C_TABLE[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
  const out = Buffer.alloc(4);
  out.writeUInt32BE((crc ^ 0xffffffff) >>> 0);
  return out.toString('base64');
}

interface Reply {
  status: number;
  headers?: Record<string, string>;
  body?: Buffer;
}

function json(status: number, payload: unknown): Reply {
  return { status, headers: { 'content-type': 'application/json; charset=UTF-8' }, body: Buffer.from(JSON.stringify(payload)) };
}

function jsonError(status: number, message: string, reason = 'backendError'): Reply {
  return json(status, { error: { code: status, message, errors: [{ domain: 'global', reason, message }] } });
}

function xmlError(status: number, code: string, message: string): Reply {
  const text = `<?xml version='1.0' encoding='UTF-8'?><Error><Code>${code}</Code><Message>${message}</Message></Error>`;
  return { status, headers: { 'content-type': 'application/xml; charset=UTF-8' }, body: Buffer.from(text) };
}
