// A runner tells the gateway which model it serves (GET /v1/models lists what runners said; the
// gateway loads none). Done at start, in the background: a gateway that is not up yet, or
// refuses, costs the listing only, never the runner's work.
import type { ModelDescription } from '../core/internal-api.ts';
import type { Logger } from '../core/log.ts';
import { realClock, withRetry, type Clock, type RetryPolicy } from '../core/retry.ts';
import type { GatewayClient } from './gateway-client.ts';
import type { Model } from './pipeline/model.ts';

/** Past the client's own retries (about 30 s each round): keep trying for an hour, a minute apart at most. */
const REGISTER_RETRY: RetryPolicy = { attempts: 1000, baseDelayMs: 1000, maxDelayMs: 60_000, maxElapsedMs: 3_600_000 };

export function describeModel(model: Model): ModelDescription {
  return {
    name: model.settings.name,
    hash: model.hash,
    execution_provider: model.executionProvider,
    default_scheduler: model.settings.defaultScheduler,
    default_negative_prompt: model.settings.defaultNegativePrompt,
    prompt_prefix: model.settings.promptPrefix,
  };
}

export interface RegisterOptions {
  log: Logger;
  /** Stops trying (the runner is stopping). */
  signal: AbortSignal;
  clock?: Clock;
  retry?: RetryPolicy;
}

/** Registers the model, retrying while the gateway is unreachable; resolves when done or given up, never rejects. */
export async function registerModel(gateway: GatewayClient, model: Model, o: RegisterOptions): Promise<void> {
  const description = describeModel(model);
  try {
    const answer = await withRetry(() => gateway.registerModel(description, { signal: o.signal }), o.retry ?? REGISTER_RETRY, {
      clock: o.clock ?? realClock,
      signal: o.signal,
      onRetry: (err, tries, wait) => o.log.warn('could not register the model; retrying', { model: description.name, tries, delay_ms: Math.round(wait), err }),
    });
    if (answer.ok) o.log.info('model registered', { model: description.name, hash: description.hash.slice(0, 10) });
    else o.log.warn('the gateway refused the model registration; GET /v1/models will not list it', { model: description.name, code: answer.code, message: answer.message });
  } catch (err) {
    if (!o.signal.aborted) o.log.warn('gave up registering the model; GET /v1/models will not list it', { model: description.name, err });
  }
}
