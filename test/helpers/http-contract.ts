// Sending fuzz requests with a deadline and checking the answer against the error contract: never
// a 5xx, and every 4xx an application/problem+json body with type, title, status (= the HTTP
// status), code and detail. Failures are described so the request can be replayed as it was sent.
import type { FuzzRequest } from './openapi-arbitraries.ts';

export type Outcome =
  | { kind: 'response'; status: number; headers: Record<string, string>; text: string; ms: number }
  | { kind: 'timeout'; limitMs: number; ms: number }
  | { kind: 'error'; error: string; ms: number };

export const REQUEST_TIMEOUT_MS = 5000;

export async function send(base: string, r: FuzzRequest, timeoutMs = REQUEST_TIMEOUT_MS): Promise<Outcome> {
  const started = performance.now();
  const ms = () => Math.round(performance.now() - started);
  const init: RequestInit = { method: r.method, headers: r.headers, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) };
  if (r.body !== undefined) init.body = r.bodyEncoding === 'latin1' ? Buffer.from(r.body, 'latin1') : r.body;
  try {
    const res = await fetch(base + r.path, init);
    const headers = Object.fromEntries(res.headers);
    // An event stream stays open while the generation runs: its headers are the answer.
    if ((headers['content-type'] ?? '').startsWith('text/event-stream')) {
      await res.body?.cancel();
      return { kind: 'response', status: res.status, headers, text: '', ms: ms() };
    }
    return { kind: 'response', status: res.status, headers, text: await res.text(), ms: ms() };
  } catch (err) {
    const e = err as Error & { cause?: unknown };
    if (e.name === 'TimeoutError' || e.name === 'AbortError') return { kind: 'timeout', limitMs: timeoutMs, ms: ms() };
    return { kind: 'error', error: `${e.name}: ${e.message}${e.cause ? ` (cause: ${String(e.cause)})` : ''}`, ms: ms() };
  }
}

/** What is wrong with the answer; empty when it keeps the contract. */
export function contractIssues(r: FuzzRequest, o: Outcome): string[] {
  if (o.kind === 'timeout') return [`no answer within ${o.limitMs} ms (the request hangs)`];
  if (o.kind === 'error') return [`the request failed: ${o.error}`];
  if (o.status >= 500) return [`status ${o.status}`];
  if (o.status < 400) return [];
  const issues: string[] = [];
  const type = o.headers['content-type'] ?? '';
  if (!/^application\/problem\+json(\s*;|$)/i.test(type)) issues.push(`${o.status} with Content-Type ${JSON.stringify(type)}, not application/problem+json`);
  if (r.method === 'HEAD') return issues;
  let body: unknown;
  try {
    body = JSON.parse(o.text);
  } catch {
    issues.push(`${o.status} with a body that is not JSON`);
    return issues;
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) return [...issues, `${o.status} with a body that is not a JSON object`];
  const p = body as Record<string, unknown>;
  for (const field of ['type', 'title', 'code', 'detail']) {
    if (typeof p[field] !== 'string') issues.push(`problem field ${field} is ${JSON.stringify(p[field])}, not a string`);
  }
  if (p.status !== o.status) issues.push(`problem field status is ${JSON.stringify(p.status)}, not ${o.status}`);
  if (/at .*\.ts:\d+/.test(o.text)) issues.push('the problem body contains a stack trace');
  return issues;
}

const excerpt = (s: string, max = 400) => {
  const q = JSON.stringify(s.length > max ? s.slice(0, max) : s);
  return s.length > max ? `${q}… (${s.length} chars)` : q;
};

/** A failure report: the issues, the request as sent (JSON-escaped, so NULs and lone surrogates show) and the answer. */
export function describe(base: string, r: FuzzRequest, o: Outcome, issues: string[]): string {
  const lines = [
    `${issues.join('; ')}`,
    `  request:  ${r.method} ${JSON.stringify(r.path)}   (${r.note})`,
    `            URL as sent: ${safeUrl(base, r.path)}`,
    `  headers:  ${JSON.stringify(r.headers)}`,
  ];
  if (r.body !== undefined) lines.push(`  body${r.bodyEncoding ? ` (${r.bodyEncoding} bytes)` : ''}: ${excerpt(r.body)}`);
  if (o.kind === 'response') {
    lines.push(`  response: ${o.status} after ${o.ms} ms, Content-Type ${JSON.stringify(o.headers['content-type'] ?? null)}`);
    lines.push(`            ${excerpt(o.text, 600)}`);
  } else lines.push(`  response: ${o.kind === 'timeout' ? 'none (timed out)' : o.error} after ${o.ms} ms`);
  return lines.join('\n');
}

function safeUrl(base: string, path: string): string {
  try {
    const u = new URL(base + path);
    return u.pathname + u.search;
  } catch {
    return '(not a URL)';
  }
}
