import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeJobMessage, encodeJobMessage } from '../../src/core/message.ts';
import {
  combinationIssues,
  denoisingSteps,
  generationParamsSchema,
  generationRequestSchema,
  imageSeed,
  LIMITS,
  legacyGenerateSchema,
  legacyToParams,
  SCHEDULER_LIMITS,
  SCHEDULERS,
} from '../../src/core/request.ts';
import { createScheduler } from '../../src/runner/pipeline/schedulers/index.ts';
import { SD15_SCHEDULER_CONFIG } from '../../src/runner/pipeline/tiny-model.ts';

const parse = (body: unknown) => generationRequestSchema.safeParse(body);
const issuePaths = (body: unknown) => {
  const r = parse(body);
  return r.success ? [] : r.error.issues.map((i) => i.path.join('.') || i.code);
};

test('defaults fill every optional field but the seed', () => {
  const r = parse({ prompt: '  a glowing sword  ' });
  assert.ok(r.success);
  assert.equal(r.data, {
    prompt: 'a glowing sword',
    negative_prompt: '',
    num_inference_steps: 50,
    guidance_scale: 7.5,
    width: 512,
    height: 512,
    scheduler: 'ddim',
    num_images: 1,
  });
});

test('limits: each bound accepted, one past it refused', () => {
  const ok = {
    prompt: 'x'.repeat(2000),
    negative_prompt: 'y'.repeat(2000),
    num_inference_steps: 150,
    guidance_scale: 30,
    seed: 2 ** 32 - 1,
    width: 1024,
    height: 256,
    scheduler: 'lcm',
    num_images: 4,
  };
  assert.ok(parse(ok).success);
  assert.ok(parse({ ...ok, num_inference_steps: 1, guidance_scale: 0, seed: 0 }).success);
  const bad: [string, unknown][] = [
    ['prompt', 'x'.repeat(2001)],
    ['prompt', '   '],
    ['negative_prompt', 'y'.repeat(2001)],
    ['num_inference_steps', 0],
    ['num_inference_steps', 151],
    ['num_inference_steps', 2.5],
    ['guidance_scale', -0.1],
    ['guidance_scale', 30.1],
    ['seed', -2],
    ['seed', 2 ** 32],
    ['width', 248],
    ['width', 1032],
    ['height', 516],
    ['scheduler', 'karras'],
    ['num_images', 5],
    ['num_images', 0],
  ];
  for (const [field, value] of bad) {
    assert.equal(issuePaths({ ...ok, [field]: value }), [field], `${field}=${String(value).slice(0, 20)}`);
  }
});

test('seed -1 means random in a request (A1111 clients send it), never in the parameters a runner gets', () => {
  assert.ok(parse({ prompt: 'a', seed: -1 }).success);
  const params = { prompt: 'a', negative_prompt: '', num_inference_steps: 2, guidance_scale: 7, width: 256, height: 256, scheduler: 'ddim', num_images: 1 };
  assert.not.ok(generationParamsSchema.safeParse({ ...params, seed: -1 }).success);
  assert.ok(generationParamsSchema.safeParse({ ...params, seed: 7 }).success);
  assert.not.ok(generationParamsSchema.safeParse(params).success, 'the parameters always hold a seed');
});

test('image i runs with seed + i, wrapped to 32 bits', () => {
  assert.is(imageSeed(7, 0), 7);
  assert.is(imageSeed(7, 3), 10);
  assert.is(imageSeed(2 ** 32 - 1, 1), 0);
});

test('wrong types and unknown fields are refused', () => {
  assert.equal(issuePaths({ prompt: 'a', num_inference_steps: '30' }), ['num_inference_steps']);
  assert.equal(issuePaths({ prompt: 42 }), ['prompt']);
  assert.equal(issuePaths({}), ['prompt']);
  assert.equal(issuePaths({ prompt: 'a', steps: 30 }), ['unrecognized_keys']);
});

test('legacy body: old defaults (seed 50), same limits, extra fields ignored', () => {
  const r = legacyGenerateSchema.safeParse({ prompt: 'shield', extra: true });
  assert.ok(r.success);
  assert.equal(legacyToParams(r.data), {
    prompt: 'shield',
    negative_prompt: '',
    num_inference_steps: 50,
    guidance_scale: 7.5,
    seed: 50,
    width: 512,
    height: 512,
    scheduler: 'ddim',
    num_images: 1,
  });
  assert.not.ok(legacyGenerateSchema.safeParse({ prompt: 'x', num_inference_steps: 10_000 }).success);
});


test("the gateway's scheduler limits and progress totals are the runner schedulers' own, step count by step count", () => {
  for (const scheduler of SCHEDULERS) {
    const runner = createScheduler(scheduler, SD15_SCHEDULER_CONFIG);
    for (let steps = LIMITS.steps.min; steps <= LIMITS.steps.max; steps++) {
      const issues = combinationIssues({ scheduler, num_inference_steps: steps });
      if (steps <= SCHEDULER_LIMITS[scheduler].maxSteps) {
        assert.equal(issues, [], `${scheduler} ${steps}`);
        runner.setTimesteps(steps);
        assert.is(runner.timesteps.length, denoisingSteps({ scheduler, num_inference_steps: steps }), `${scheduler} ${steps}: UNet evaluations`);
      } else {
        assert.equal(issues.map((i) => i.path), ['num_inference_steps']);
        assert.match(issues[0]!.message, new RegExp(`${scheduler} scheduler takes at most ${SCHEDULER_LIMITS[scheduler].maxSteps} steps`));
        assert.throws(() => runner.setTimesteps(steps), (err: unknown) => err instanceof RangeError, `${scheduler} ${steps}: the runner refuses it too`);
      }
    }
  }
  assert.is(denoisingSteps({ scheduler: 'pndm', num_inference_steps: 150 }), 151, 'PLMS runs its second timestep twice');
});

test('job message round-trips and refuses what it does not understand', () => {
  const params = legacyToParams(legacyGenerateSchema.parse({ prompt: 'axe' }));
  const message = { v: 1 as const, id: '0b4f8f4e-7a53-4d4c-9d0e-2f1f0c8b6a11', params };
  assert.equal(decodeJobMessage(encodeJobMessage(message)), message);
  assert.throws(() => decodeJobMessage(Buffer.from('{not json')), /not JSON/);
  assert.throws(() => decodeJobMessage(Buffer.from(JSON.stringify({ ...message, v: 2 }))), /invalid job message/);
  assert.throws(() => decodeJobMessage(Buffer.from(JSON.stringify({ ...message, id: 'x' }))), /invalid job message/);
});

test.run();
