// The runner's model registration: retried while the gateway is unreachable, given up on a
// refusal, and never a failure of the runner (it resolves whatever happens).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ModelDescription } from '../../src/core/internal-api.ts';
import type { Clock } from '../../src/core/retry.ts';
import { GatewayUnavailableError, type GatewayClient, type ReportResult } from '../../src/runner/gateway-client.ts';
import type { Model } from '../../src/runner/pipeline/model.ts';
import { registerModel } from '../../src/runner/register-model.ts';
import { recordingLogger } from '../helpers/log.ts';

const model = {
  hash: 'e'.repeat(64),
  executionProvider: 'cpu',
  settings: { name: 'tiny', promptPrefix: 'tsuki_advtr, ', defaultNegativePrompt: 'blurry', defaultScheduler: 'ddim' },
} as unknown as Model;

/** Sleeps end at once; the time they asked for is recorded. */
const instantClock = (slept: number[]): Clock => ({ now: () => 0, random: () => 0.5, sleep: async (ms) => void slept.push(ms) });

function gatewayAnswering(answers: (ReportResult | Error)[]) {
  const sent: ModelDescription[] = [];
  const gateway = {
    async registerModel(description: ModelDescription) {
      sent.push(description);
      const answer = answers.shift()!;
      if (answer instanceof Error) throw answer;
      return answer;
    },
  } as unknown as GatewayClient;
  return { gateway, sent };
}

const unavailable = () => new GatewayUnavailableError('registerModel', 20, new Error('connect ECONNREFUSED'));

test('an unreachable gateway is retried until it answers; the description is the model\'s', async () => {
  const { gateway, sent } = gatewayAnswering([unavailable(), unavailable(), { ok: true }]);
  const slept: number[] = [];
  const log = recordingLogger();
  const { entries } = log;
  await registerModel(gateway, model, { log, signal: new AbortController().signal, clock: instantClock(slept) });
  assert.is(sent.length, 3);
  assert.equal(sent[0], { name: 'tiny', hash: 'e'.repeat(64), execution_provider: 'cpu', default_scheduler: 'ddim', default_negative_prompt: 'blurry', prompt_prefix: 'tsuki_advtr, ' });
  assert.is(slept.length, 2);
  assert.ok(entries.some((e) => e.msg === 'model registered'));
});

test('a refusal, a gateway that never comes, or a stop: it resolves, with a warning, and the runner goes on', async () => {
  const refused = gatewayAnswering([{ ok: false, code: 'refused', status: 422, problemCode: 'validation_failed', message: 'bad' }]);
  const first = recordingLogger();
  await registerModel(refused.gateway, model, { log: first, signal: new AbortController().signal, clock: instantClock([]) });
  assert.is(refused.sent.length, 1, 'a refusal is not retried');
  assert.ok(first.entries.some((e) => e.level === 'warn' && /refused/.test(e.msg)));

  const never = gatewayAnswering([unavailable(), unavailable(), unavailable()]);
  const second = recordingLogger();
  await registerModel(never.gateway, model, {
    log: second,
    signal: new AbortController().signal,
    clock: instantClock([]),
    retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 1, maxElapsedMs: 1000 },
  });
  assert.is(never.sent.length, 3);
  assert.ok(second.entries.some((e) => e.level === 'warn' && /gave up/.test(e.msg)));

  const stopping = new AbortController();
  stopping.abort();
  const stopped = gatewayAnswering([unavailable()]);
  await registerModel(stopped.gateway, model, { log: recordingLogger(), signal: stopping.signal, clock: instantClock([]) });
  assert.is(stopped.sent.length, 1);
});

test.run();
