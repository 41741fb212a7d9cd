// /internal/v1: the runners' side of the state machine (docs/architecture.md, decisions 1, 2 and 4).
// Each transition is one conditional UPDATE; when it does not apply, nothing changed and the
// answer is 409 with a code that tells the runner what to do (skip, wait, or stop).
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { AppError, notFound } from '../../core/errors.ts';
import { isTerminal } from '../../core/status.ts';
import { storableText } from '../../core/text.ts';
import type { Generation } from '../../store/generation.ts';
import { claimGeneration } from '../../store/sql/claimGeneration.ts';
import { completeGeneration } from '../../store/sql/completeGeneration.ts';
import { failGeneration } from '../../store/sql/failGeneration.ts';
import { getGeneration } from '../../store/sql/getGeneration.ts';
import { releaseGeneration } from '../../store/sql/releaseGeneration.ts';
import { reportProgress } from '../../store/sql/reportProgress.ts';
import type { GatewayDeps } from '../deps.ts';
import { requireJson } from '../http.ts';
import { validationHook } from '../validation.ts';

const idParam = z.object({ id: z.uuid() });
// generations.attempts is a PostgreSQL integer.
const attempt = z.number().int().min(1).max(2 ** 31 - 1).describe('The attempt number the claim returned.');
const json = <T extends z.ZodType>(schema: T) => ({
  required: true,
  content: { 'application/json': { schema } },
});
const ok = { 200: { description: 'Applied' }, 409: { description: 'Not applicable in the current state; nothing changed' } };
const route = <B extends z.ZodType>(path: string, body: B) =>
  createRoute({
    method: 'post',
    path,
    hide: true,
    middleware: [requireJson] as const,
    request: { params: idParam, body: json(body) },
    responses: ok,
  });

const claimRoute = route('/generations/{id}/claim', z.strictObject({ runner_id: storableText().min(1).max(200) }));
const progressRoute = route(
  '/generations/{id}/progress',
  z.strictObject({ attempt, step: z.number().int().min(0).max(10_000), total: z.number().int().min(1).max(10_000) }),
);
const completeRoute = route(
  '/generations/{id}/complete',
  z.strictObject({
    attempt,
    images: z
      .array(z.strictObject({
          key: storableText().min(1).max(1024),
          // Shown to clients as the image's link: never a javascript: or data: URL.
          url: z.url({ protocol: /^https?$/, error: 'must be an http or https URL' }).max(8192).optional(),
        }))
      .min(1)
      .max(4),
  }),
);
const failRoute = route(
  '/generations/{id}/fail',
  z.strictObject({
    attempt,
    code: z.string().regex(/^[a-z][a-z0-9_]{0,63}$/, 'snake_case, at most 64 characters'),
    message: storableText().min(1).max(2000),
  }),
);

const releaseRoute = route('/generations/{id}/release', z.strictObject({ attempt }));

const secondsUntil = (d: Date | null) => Math.max(1, Math.ceil(((d?.getTime() ?? 0) - Date.now()) / 1000));

/** Why a transition did not apply, as a 409 the runner can act on. */
function conflict(current: Generation, attemptNo: number | null): AppError {
  if (current.status === 'canceled') {
    return new AppError(409, 'canceled', 'The generation was canceled; stop working on it.', { generation_status: current.status, stop: true });
  }
  if (isTerminal(current.status)) {
    return new AppError(409, 'already_finished', `The generation is already ${current.status}.`, {
      generation_status: current.status,
      stop: true,
    });
  }
  if (current.status === 'processing' && attemptNo === null) {
    const retryAfter = secondsUntil(current.leaseExpiresAt);
    return new AppError(
      409,
      'claimed',
      'Another runner holds the claim; it can be claimed again if its lease expires.',
      { generation_status: current.status, retry_after_s: retryAfter },
      { 'Retry-After': String(retryAfter) },
    );
  }
  return new AppError(409, 'lease_lost', 'This claim is no longer current (lease expired and claimed again, or never claimed).', {
    generation_status: current.status,
    stop: true,
  });
}

export function internalRoutes(deps: GatewayDeps) {
  const app = new OpenAPIHono({ defaultHook: validationHook });
  const lease = deps.settings.leaseSeconds;

  const explain = async (id: string, attemptNo: number | null): Promise<never> => {
    const current = await getGeneration(deps.db, id);
    throw current ? conflict(current, attemptNo) : notFound();
  };

  app.openapi(claimRoute, async (c) => {
    const { id } = c.req.valid('param');
    const g = await claimGeneration(deps.db, id, c.req.valid('json').runner_id, lease);
    if (!g) return explain(id, null);
    return c.json(
      {
        id: g.id,
        attempt: g.attempts,
        params: g.params,
        lease_expires_at: g.leaseExpiresAt!.toISOString(),
        lease_seconds: lease,
        // Submit → this claim, on the gateway's clock: the runner's queue-wait metric.
        queued_ms: Math.max(0, Date.now() - g.createdAt.getTime()),
      },
      200,
    );
  });

  app.openapi(progressRoute, async (c) => {
    const { id } = c.req.valid('param');
    const body = c.req.valid('json');
    const g = await reportProgress(deps.db, id, body.attempt, body.step, body.total, lease);
    if (!g) return explain(id, body.attempt);
    return c.json({ stop: false, lease_expires_at: g.leaseExpiresAt!.toISOString() }, 200);
  });

  app.openapi(completeRoute, async (c) => {
    const { id } = c.req.valid('param');
    const body = c.req.valid('json');
    const g = await completeGeneration(deps.db, id, body.attempt, body.images);
    if (!g) return explain(id, body.attempt);
    return c.json({ status: g.status }, 200);
  });

  app.openapi(failRoute, async (c) => {
    const { id } = c.req.valid('param');
    const body = c.req.valid('json');
    const g = await failGeneration(deps.db, id, body.attempt, body.code, body.message);
    if (!g) return explain(id, body.attempt);
    return c.json({ status: g.status }, 200);
  });

  // A stopping runner hands the job back: its lease ends now, so the redelivered message is
  // claimed at once instead of after the lease.
  app.openapi(releaseRoute, async (c) => {
    const { id } = c.req.valid('param');
    const { attempt: attemptNo } = c.req.valid('json');
    if (!(await releaseGeneration(deps.db, id, attemptNo))) return explain(id, attemptNo);
    return c.json({ released: true }, 200);
  });

  return app;
}
