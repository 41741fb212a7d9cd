// RFC 9457 problem details: every JSON error the gateway sends goes through here, with a stable
// `code` clients can branch on. Unexpected errors are logged and answered without internals.
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { AppError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { DatabaseUnavailableError } from '../store/errors.ts';
import { bodyTooLarge, ClientClosedRequestError, unsupportedMediaType } from './http.ts';

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  408: 'Request Timeout',
  409: 'Conflict',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  421: 'Misdirected Request',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

export const problemTitle = (status: number) => TITLES[status] ?? 'Error';

/** The problem document of `err`, as JSON text. */
export function problemJson(err: AppError): string {
  return JSON.stringify({
    type: `urn:itemgen:problem:${err.code}`,
    title: problemTitle(err.status),
    status: err.status,
    code: err.code,
    detail: err.message,
    ...err.extra,
  });
}

export function problem(c: Context, err: AppError): Response {
  for (const [k, v] of Object.entries(err.headers)) c.header(k, v);
  return c.body(problemJson(err), err.status as ContentfulStatusCode, {
    'Content-Type': 'application/problem+json',
  });
}

export function errorHandler(log: Logger) {
  return (err: Error, c: Context): Response => {
    if (err instanceof AppError) return problem(c, err);
    if (err instanceof HTTPException) {
      if (err.status === 400 && /json/i.test(err.message)) {
        return problem(c, new AppError(400, 'malformed_json', 'The request body is not valid JSON.'));
      }
      if (err.status === 413) return problem(c, bodyTooLarge());
      if (err.status === 415) return problem(c, unsupportedMediaType());
      return problem(c, new AppError(err.status, `http_${err.status}`, err.message || TITLES[err.status] || 'Error'));
    }
    if (err instanceof ClientClosedRequestError) {
      // Nobody reads this answer; 499 (as nginx counts it) keeps it apart from our errors in metrics.
      log.debug('client closed the request', { err, method: c.req.method, path: c.req.path });
      return problem(c, new AppError(499, 'client_closed_request', 'The client closed the connection before its request was read.'));
    }
    if (err instanceof DatabaseUnavailableError) {
      log.warn('database unavailable', { err, method: c.req.method, path: c.req.path });
      const detail =
        err.outcome === 'not_applied'
          ? 'The job store is unreachable; nothing was changed. Retry shortly.'
          : 'The job store did not answer in time; the request may or may not have taken effect. Retry shortly (with the same Idempotency-Key for a submit).';
      return problem(c, new AppError(503, 'database_unavailable', detail, {}, { 'Retry-After': '5' }));
    }
    log.error('unhandled error', { err, stack: err.stack, method: c.req.method, path: c.req.path });
    return problem(c, new AppError(500, 'internal_error', 'Something went wrong on our side; the request may be retried.'));
  };
}
