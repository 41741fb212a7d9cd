// The web app's server side: the page's script and stylesheet, bundled once per process by
// esbuild from src/web/app/ (browser code: never imported by Node), named by content hash so they
// can be cached for a year, and compressed ahead of time (brotli and gzip). The gateway serves the
// result (src/gateway/routes/web.ts); this module knows nothing of HTTP.
import { createHash } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { build } from 'esbuild';

export interface WebAsset {
  /** Served at /assets/{name}; the name holds a hash of the content. */
  name: string;
  type: string;
  identity: Buffer;
  br: Buffer;
  gzip: Buffer;
  etag: string;
}

export interface WebBundle {
  /** The page at `/`: it only links the assets (no inline script or style, for the CSP). */
  html: WebAsset;
  assets: ReadonlyMap<string, WebAsset>;
}

const APP_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'app');
const TYPES: Record<string, string> = { '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8' };

function asset(name: string, type: string, identity: Buffer): WebAsset {
  return {
    name,
    type,
    identity,
    br: brotliCompressSync(identity, { params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: identity.length } }),
    gzip: gzipSync(identity, { level: 9 }),
    etag: `"${createHash('sha256').update(identity).digest('base64url').slice(0, 22)}"`,
  };
}

const page = (script: string, style: string) => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>itemgen</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/${style}">
<script type="module" src="/assets/${script}"></script>
</head>
<body>
<div id="app"><noscript>itemgen's page needs JavaScript; the API is at <a href="/docs">/docs</a>.</noscript></div>
</body>
</html>
`;

async function bundle(): Promise<WebBundle> {
  const result = await build({
    entryPoints: [path.join(APP_DIR, 'main.tsx')],
    bundle: true,
    minify: true,
    format: 'esm',
    target: 'es2022',
    platform: 'browser',
    jsx: 'automatic',
    jsxImportSource: 'preact',
    entryNames: '[name]-[hash]',
    outdir: 'assets',
    write: false,
    legalComments: 'none',
    logLevel: 'silent',
  });
  const assets = new Map<string, WebAsset>();
  for (const file of result.outputFiles) {
    const name = path.basename(file.path);
    const type = TYPES[path.extname(name)];
    if (type) assets.set(name, asset(name, type, Buffer.from(file.contents)));
  }
  const find = (ext: string) => [...assets.keys()].find((n) => n.endsWith(ext));
  const script = find('.js');
  const style = find('.css');
  if (!script || !style) throw new Error(`the web app's bundle lacks its ${script ? 'stylesheet' : 'script'}`);
  return { html: asset('index.html', 'text/html; charset=utf-8', Buffer.from(page(script, style))), assets };
}

let built: Promise<WebBundle> | undefined;

/** The bundle, built on the first call of this process; a failed build is retried by the next call. */
export function webBundle(): Promise<WebBundle> {
  built ??= bundle().catch((err: unknown) => {
    built = undefined;
    throw err;
  });
  return built;
}
