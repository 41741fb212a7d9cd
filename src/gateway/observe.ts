// What every request leaves behind (docs/architecture.md, decision 15): a server span, continuing
// the caller's W3C trace context (a runner's internal calls join their generation's trace this
// way), named for the matched route; and an access log line at debug in Cloud Logging's
// `httpRequest` form, with the path only (a query string may carry what should not be logged).
import type { Context, MiddlewareHandler } from 'hono';
import type { Logger } from '../core/log.ts';
import { contextFrom, SpanKind, SpanStatusCode, startSpan, withActive } from '../telemetry/index.ts';
import { clientAddress } from './http.ts';

export function observeRequests(log: Logger, trustedProxyHops: number): MiddlewareHandler {
  return (c: Context, next) => {
    const started = performance.now();
    const parent = contextFrom({ traceparent: c.req.header('traceparent'), tracestate: c.req.header('tracestate') });
    const span = startSpan(c.req.method, { 'http.request.method': c.req.method, 'url.path': c.req.path }, { kind: SpanKind.SERVER, parent });
    return withActive(
      span,
      async () => {
        try {
          await next();
        } finally {
          const route = c.req.routePath || 'unmatched';
          const status = c.res.status;
          span.updateName(`${c.req.method} ${route}`);
          span.setAttributes({ 'http.route': route, 'http.response.status_code': status });
          // A 4xx is the client's; only the gateway's own failures mark the span failed.
          if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
          span.end();
          log.debug('request', {
            httpRequest: {
              requestMethod: c.req.method,
              requestUrl: c.req.path,
              status,
              latency: `${((performance.now() - started) / 1000).toFixed(6)}s`,
              userAgent: c.req.header('user-agent'),
              remoteIp: clientAddress(c, trustedProxyHops),
            },
          });
        }
      },
      parent,
    );
  };
}
