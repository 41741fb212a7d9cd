// /internal/v1: the runners' side of the state machine (docs/architecture.md, decisions 1, 2 and 4).
// Each transition is one conditional UPDATE; when it does not apply, nothing changed and the
// answer is 409 with a code that tells the runner what to do (skip, wait, or stop).
// Bodies, answers and codes are the contract's (src/core/internal-api.ts), which the runner's client shares.
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { AppError, notFound } from '../../core/errors.ts';
import { conflictProblem, internalApi, MODEL_NAME_PATTERN, type ConflictCode, type ConflictExtra } from '../../core/internal-api.ts';
import { isTerminal } from '../../core/status.ts';
import type { Generation } from '../../store/generation.ts';
import { claimGeneration } from '../../store/sql/claimGeneration.ts';
import { completeGeneration } from '../../store/sql/completeGeneration.ts';
import { failGeneration } from '../../store/sql/failGeneration.ts';
import { getGeneration } from '../../store/sql/getGeneration.ts';
import { releaseGeneration } from '../../store/sql/releaseGeneration.ts';
import { reportProgress } from '../../store/sql/reportProgress.ts';
import { upsertModel } from '../../store/sql/upsertModel.ts';
import type { GatewayDeps } from '../deps.ts';
import { requireJson } from '../http.ts';
import { sizeClass } from '../metrics.ts';
import { validationHook } from '../validation.ts';

const idParam = z.object({ id: z.uuid() });

/** A route as src/core/internal-api.ts declares it: its path, its body, its 200 and its 409. */
const route = <P extends string, B extends z.ZodType, A extends z.ZodType>(spec: { path: P; body: B; answer: A }) =>
  createRoute({
    method: 'post',
    path: spec.path,
    hide: true,
    middleware: [requireJson] as const,
    request: { params: idParam, body: { required: true, content: { 'application/json': { schema: spec.body } } } },
    responses: {
      200: { description: 'Applied', content: { 'application/json': { schema: spec.answer } } },
      409: {
        description: 'Not applicable in the current state; nothing changed',
        content: { 'application/problem+json': { schema: conflictProblem } },
      },
    },
  });

const claimRoute = route(internalApi.claim);
const progressRoute = route(internalApi.progress);
const completeRoute = route(internalApi.complete);
const failRoute = route(internalApi.fail);
const releaseRoute = route(internalApi.release);

// A runner registers the model it serves at start (GET /v1/models lists what was registered).
const registerModelRoute = createRoute({
  method: internalApi.registerModel.method,
  path: internalApi.registerModel.path,
  hide: true,
  middleware: [requireJson] as const,
  request: {
    params: z.object({ name: z.string().regex(MODEL_NAME_PATTERN) }),
    body: { required: true, content: { 'application/json': { schema: internalApi.registerModel.body } } },
  },
  responses: { 200: { description: 'Registered', content: { 'application/json': { schema: internalApi.registerModel.answer } } } },
});

const seconds = (from: Date, to: Date) => Math.max(0, (to.getTime() - from.getTime()) / 1000);
const secondsUntil = (d: Date | null) => Math.max(1, Math.ceil(((d?.getTime() ?? 0) - Date.now()) / 1000));

/** A 409 whose code and fields are the contract's. */
const refusal = (code: ConflictCode, message: string, extra: ConflictExtra, headers: Record<string, string> = {}) =>
  new AppError(409, code, message, extra, headers);

/** Why a transition did not apply, as a 409 the runner can act on. */
function conflict(current: Generation, attemptNo: number | null): AppError {
  if (current.status === 'canceled') {
    return refusal('canceled', 'The generation was canceled; stop working on it.', { generation_status: current.status, stop: true });
  }
  if (isTerminal(current.status)) {
    return refusal('already_finished', `The generation is already ${current.status}.`, {
      generation_status: current.status,
      stop: true,
    });
  }
  if (current.status === 'processing' && attemptNo === null) {
    const retryAfter = secondsUntil(current.leaseExpiresAt);
    return refusal(
      'claimed',
      'Another runner holds the claim; it can be claimed again if its lease expires.',
      { generation_status: current.status, retry_after_s: retryAfter },
      { 'Retry-After': String(retryAfter) },
    );
  }
  return refusal('lease_lost', 'This claim is no longer current (lease expired and claimed again, or never claimed).', {
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
    const g = await reportProgress(deps.db, id, body.attempt, body.step, body.total, lease, body.preview ?? null);
    if (!g) return explain(id, body.attempt);
    // A runner reports its first step at once (progress-reporter.ts throttles only what follows),
    // so step 1 is the first a client can see. Both times are the database's.
    if (body.step === 1) deps.metrics.timeToFirstStep.observe(seconds(g.createdAt, g.updatedAt));
    return c.json({ stop: false, lease_expires_at: g.leaseExpiresAt!.toISOString() }, 200);
  });

  app.openapi(completeRoute, async (c) => {
    const { id } = c.req.valid('param');
    const body = c.req.valid('json');
    const g = await completeGeneration(deps.db, id, body.attempt, body.images, body.ran ?? null, body.timings ?? null);
    if (!g) return explain(id, body.attempt);
    deps.metrics.endToEnd.observe({ size: sizeClass(g.params.width, g.params.height) }, seconds(g.createdAt, g.finishedAt!));
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
    return c.json({ released: true as const }, 200);
  });

  app.openapi(registerModelRoute, async (c) => {
    const { name } = c.req.valid('param');
    const model = c.req.valid('json');
    if (model.name !== name) throw new AppError(422, 'validation_failed', `The body names model ${JSON.stringify(model.name)}, the path ${JSON.stringify(name)}.`);
    await upsertModel(deps.db, model.name, model.hash, model);
    return c.json({ name, registered: true as const }, 200);
  });

  return app;
}
