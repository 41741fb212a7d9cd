// DDIM, PNDM and LCM against diffusers' own scheduler tests: the same deterministic sample and dummy model
// as SchedulerCommonTest (tests/schedulers/test_schedulers.py), the same configs and full loops as
// tests/schedulers/test_scheduler_{ddim,pndm,lcm}.py, and the result_sum / result_mean those tests expect,
// within their tolerances (|sum - expected| < 1e-2, or 1e-3 for LCM; |mean - expected| < 1e-3).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Generator } from '../../../src/runner/pipeline/rng.ts';
import { alphasCumprod, betasFor } from '../../../src/runner/pipeline/schedulers/betas.ts';
import { createDdimScheduler } from '../../../src/runner/pipeline/schedulers/ddim.ts';
import { createLcmScheduler } from '../../../src/runner/pipeline/schedulers/lcm.ts';
import { createGenerator } from '../../../src/runner/pipeline/rng.ts';
import { createPndmScheduler } from '../../../src/runner/pipeline/schedulers/pndm.ts';
import type { Scheduler, SchedulerConfig } from '../../../src/runner/pipeline/schedulers/types.ts';
import { constantGenerator, dummyModel, dummySample, SAMPLE_SIZE } from './scheduler-fixtures.ts';

const f = Math.fround;
/** The diffusers tests' full_loop: set_timesteps, then model and step over every timestep. */
function fullLoop(scheduler: Scheduler, steps: number, sample = dummySample(false), generator?: Generator) {
  scheduler.setTimesteps(steps);
  return runFrom(scheduler, scheduler.timesteps, sample, generator);
}

function runFrom(scheduler: Scheduler, timesteps: number[], sample: Float32Array, generator?: Generator) {
  for (const t of timesteps) sample = scheduler.step(dummyModel(sample, t), t, sample, generator);
  return sample;
}

/** torch.sum(torch.abs(x)) and torch.mean(torch.abs(x)), compared as the diffusers tests do. */
function assertResult(x: Float32Array, expectedSum: number, expectedMean: number, sumTolerance = 1e-2) {
  let sum = 0;
  for (const v of x) sum += Math.abs(v);
  const mean = sum / x.length;
  assert.ok(Math.abs(sum - expectedSum) < sumTolerance, `result_sum ${sum}, diffusers expects ${expectedSum}`);
  assert.ok(Math.abs(mean - expectedMean) < 1e-3, `result_mean ${mean}, diffusers expects ${expectedMean}`);
}


function throwsNaming(fn: () => unknown, key: string) {
  assert.throws(fn, (e: Error) => e.message.includes(key));
}

/** Stable Diffusion 1.5's scheduler/scheduler_config.json (a PNDMScheduler config, reused for the others). */
const SD15: SchedulerConfig = {
  _class_name: 'PNDMScheduler',
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  beta_start: 0.00085,
  clip_sample: false,
  num_train_timesteps: 1000,
  set_alpha_to_one: false,
  skip_prk_steps: true,
  steps_offset: 1,
  trained_betas: null,
};

/** range(start, stop, step) in Python's sense, stop excluded. */
function range(start: number, stop: number, step: number): number[] {
  const out: number[] = [];
  for (let v = start; step > 0 ? v < stop : v > stop; v += step) out.push(v);
  return out;
}

// --- DDIM: tests/schedulers/test_scheduler_ddim.py (full_loop: 10 steps, eta 0) ---

const DDIM_TEST: SchedulerConfig = {
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: 'linear',
  clip_sample: true,
};

test('ddim test_full_loop_no_noise: sum 172.0067, mean 0.223967', () => {
  assertResult(fullLoop(createDdimScheduler(DDIM_TEST), 10), 172.0067, 0.223967);
});

test('ddim test_full_loop_with_v_prediction: sum 52.5302, mean 0.0684', () => {
  assertResult(fullLoop(createDdimScheduler({ ...DDIM_TEST, prediction_type: 'v_prediction' }), 10), 52.5302, 0.0684);
});

test('ddim test_full_loop_with_set_alpha_to_one (beta_start 0.01): sum 149.8295, mean 0.1951', () => {
  const scheduler = createDdimScheduler({ ...DDIM_TEST, set_alpha_to_one: true, beta_start: 0.01 });
  assertResult(fullLoop(scheduler, 10), 149.8295, 0.1951);
});

test('ddim test_full_loop_with_no_set_alpha_to_one (beta_start 0.01): sum 149.0784, mean 0.1941', () => {
  const scheduler = createDdimScheduler({ ...DDIM_TEST, set_alpha_to_one: false, beta_start: 0.01 });
  assertResult(fullLoop(scheduler, 10), 149.0784, 0.1941);
});

test('ddim test_full_loop_with_noise (starts at timesteps[8] after add_noise): sum 354.5418, mean 0.4616', () => {
  const scheduler = createDdimScheduler(DDIM_TEST);
  scheduler.setTimesteps(10);
  const timesteps = scheduler.timesteps.slice(8);
  // DDPMScheduler.add_noise, which DDIM copies: sqrt(a_t) x + sqrt(1 - a_t) noise in float32.
  const alpha = alphasCumprod(betasFor(DDIM_TEST))[timesteps[0]!]!;
  const [sa, sb] = [f(Math.sqrt(alpha)), f(Math.sqrt(f(1 - alpha)))];
  const noise = dummySample(true);
  const noisy = dummySample(false).map((x, i) => f(f(sa * x) + f(sb * noise[i]!)));
  assertResult(runFrom(scheduler, timesteps, noisy), 354.5418, 0.4616);
});

test('ddim test_variance: eta 1 adds sqrt(_get_variance(t, prev)) times the generator noise', () => {
  // test_variance's values (to 1e-5) for (t, prev) = (420, 400), (980, 960) at 50 steps and
  // (487, 486), (999, 998) at 1000 steps; from a zero sample and output, the step is exactly std * z.
  const cases = [
    [50, 420, 0.14771],
    [50, 980, 0.3246],
    [1000, 487, 0.00979],
    [1000, 999, 0.02],
  ] as const;
  for (const [steps, t, variance] of cases) {
    const scheduler = createDdimScheduler({ ...DDIM_TEST, eta: 1 });
    scheduler.setTimesteps(steps);
    const generator = constantGenerator(1);
    const zeros = new Float32Array(SAMPLE_SIZE);
    const std = scheduler.step(zeros, t, zeros, generator)[0]!;
    assert.ok(Math.abs(std * std - variance) < 1e-5, `variance(${t}) ${std * std}, diffusers ${variance}`);
    assert.equal(generator.draws, [SAMPLE_SIZE]);
  }
});

test('ddim fast path (epsilon, no clipping, eta 0: Stable Diffusion\'s config) equals the general loop value for value', () => {
  // Clipping to an unreachable range takes the general loop with the same arithmetic.
  const fast = fullLoop(createDdimScheduler({ ...DDIM_TEST, clip_sample: false }), 10);
  const general = fullLoop(createDdimScheduler({ ...DDIM_TEST, clip_sample: true, clip_sample_range: 1e30 }), 10);
  assert.equal(Array.from(fast), Array.from(general));
  // This loop never reaches diffusers' clip range, so its reference numbers hold without clipping too.
  assertResult(fast, 172.0067, 0.223967);
});

test('ddim draws noise only with eta > 0, once per step, and needs a generator for it', () => {
  const quiet = constantGenerator(1);
  fullLoop(createDdimScheduler(DDIM_TEST), 10, undefined, quiet);
  assert.equal(quiet.draws, []);
  const noisy = constantGenerator(0.5);
  fullLoop(createDdimScheduler({ ...DDIM_TEST, eta: 0.5 }), 10, undefined, noisy);
  assert.equal(noisy.draws, new Array(10).fill(SAMPLE_SIZE));
  throwsNaming(() => fullLoop(createDdimScheduler({ ...DDIM_TEST, eta: 0.5 }), 10), 'generator');
});

test('ddim test_steps_offset: steps_offset 1 at 5 steps gives [801, 601, 401, 201, 1]', () => {
  const scheduler = createDdimScheduler({ ...DDIM_TEST, steps_offset: 1 });
  scheduler.setTimesteps(5);
  assert.equal(scheduler.timesteps, [801, 601, 401, 201, 1]);
});

test('ddim timesteps for Stable Diffusion 1.5 at 50 steps, each timestep_spacing', () => {
  const leading = createDdimScheduler(SD15);
  leading.setTimesteps(50);
  assert.equal(leading.timesteps, range(981, 0, -20));
  // Expected lists from diffusers' numpy expressions (numpy 2.4): trailing
  // np.round(np.arange(1000, 0, -1000 / n)) - 1, linspace np.linspace(0, 999, n).round()[::-1].
  const trailing = createDdimScheduler({ ...SD15, timestep_spacing: 'trailing' });
  trailing.setTimesteps(50);
  assert.equal(trailing.timesteps, range(999, 0, -20));
  const linspace = createDdimScheduler({ ...SD15, timestep_spacing: 'linspace' });
  linspace.setTimesteps(50);
  assert.equal(
    linspace.timesteps,
    [
      999, 979, 958, 938, 917, 897, 877, 856, 836, 816, 795, 775, 754, 734, 714, 693, 673, 652, 632, 612, 591, 571,
      550, 530, 510, 489, 469, 449, 428, 408, 387, 367, 347, 326, 306, 285, 265, 245, 224, 204, 183, 163, 143, 122,
      102, 82, 61, 41, 20, 0,
    ],
  );
});

test('ddim timestep_spacing rounds halves to even as np.round does', () => {
  // 1000 - 2 * 62.5 = 812.5 rounds to 812 (Math.round would give 813); linspace 999 / 6 * 1 = 166.5 to 166.
  const trailing = createDdimScheduler({ ...SD15, timestep_spacing: 'trailing' });
  trailing.setTimesteps(16);
  assert.equal(trailing.timesteps, [999, 937, 874, 811, 749, 687, 624, 561, 499, 437, 374, 311, 249, 187, 124, 61]);
  const linspace = createDdimScheduler({ ...SD15, timestep_spacing: 'linspace' });
  linspace.setTimesteps(7);
  assert.equal(linspace.timesteps, [999, 832, 666, 500, 333, 166, 0]);
});

test('ddim rejects bad and unsupported config values, naming the key', () => {
  throwsNaming(() => createDdimScheduler({ prediction_type: 'flow' }), 'prediction_type');
  throwsNaming(() => createDdimScheduler({ timestep_spacing: 'even' }), 'timestep_spacing');
  throwsNaming(() => createDdimScheduler({ clip_sample: 'yes' }), 'clip_sample');
  throwsNaming(() => createDdimScheduler({ steps_offset: 0.5 }), 'steps_offset');
  throwsNaming(() => createDdimScheduler({ eta: -1 }), 'eta');
  throwsNaming(() => createDdimScheduler({ beta_schedule: 'cubic' }), 'beta_schedule');
  throwsNaming(() => createDdimScheduler({ thresholding: true }), 'thresholding');
  throwsNaming(() => createDdimScheduler({ rescale_betas_zero_snr: true }), 'rescale_betas_zero_snr');
  // test_num_inference_steps_zero_raises
  throwsNaming(() => createDdimScheduler({}).setTimesteps(0), 'num_inference_steps');
});

// --- PNDM: tests/schedulers/test_scheduler_pndm.py (full_loop: 10 steps, Runge-Kutta then PLMS) ---

const PNDM_TEST: SchedulerConfig = {
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: 'linear',
};

test('pndm test_full_loop_no_noise: sum 198.1318, mean 0.2580', () => {
  assertResult(fullLoop(createPndmScheduler(PNDM_TEST), 10), 198.1318, 0.258);
});

test('pndm test_full_loop_with_v_prediction: sum 67.3986, mean 0.0878', () => {
  assertResult(fullLoop(createPndmScheduler({ ...PNDM_TEST, prediction_type: 'v_prediction' }), 10), 67.3986, 0.0878);
});

test('pndm test_full_loop_with_set_alpha_to_one (beta_start 0.01): sum 230.0399, mean 0.2995', () => {
  const scheduler = createPndmScheduler({ ...PNDM_TEST, set_alpha_to_one: true, beta_start: 0.01 });
  assertResult(fullLoop(scheduler, 10), 230.0399, 0.2995);
});

test('pndm test_full_loop_with_no_set_alpha_to_one (beta_start 0.01): sum 186.9482, mean 0.2434', () => {
  const scheduler = createPndmScheduler({ ...PNDM_TEST, set_alpha_to_one: false, beta_start: 0.01 });
  assertResult(fullLoop(scheduler, 10), 186.9482, 0.2434);
});

test('pndm test_steps_offset: Runge-Kutta timesteps then PLMS timesteps', () => {
  const scheduler = createPndmScheduler({ ...PNDM_TEST, steps_offset: 1 });
  scheduler.setTimesteps(10);
  assert.equal(
    scheduler.timesteps,
    [901, 851, 851, 801, 801, 751, 751, 701, 701, 651, 651, 601, 601, 501, 401, 301, 201, 101, 1],
  );
});

test('pndm timesteps for Stable Diffusion 1.5 at 50 steps: PLMS only, second timestep twice', () => {
  const scheduler = createPndmScheduler(SD15);
  scheduler.setTimesteps(50);
  assert.equal(scheduler.timesteps, [981, 961, ...range(961, 0, -20)]);
});

test('pndm setTimesteps restarts the multistep state', () => {
  const scheduler = createPndmScheduler(SD15);
  const first = fullLoop(scheduler, 20);
  assert.equal(fullLoop(scheduler, 20), first);
  const prk = createPndmScheduler(PNDM_TEST);
  const prkFirst = fullLoop(prk, 10);
  assert.equal(fullLoop(prk, 10), prkFirst);
});

test('pndm test_pndm_low_inference_steps_prk_validation: Runge-Kutta needs >= 4 steps', () => {
  for (const n of [1, 2, 3]) throwsNaming(() => createPndmScheduler(PNDM_TEST).setTimesteps(n), 'num_inference_steps');
  createPndmScheduler(PNDM_TEST).setTimesteps(4);
  for (const n of [1, 2, 3, 4]) createPndmScheduler({ ...PNDM_TEST, skip_prk_steps: true }).setTimesteps(n);
});

test('pndm rejects bad config values, naming the key', () => {
  throwsNaming(() => createPndmScheduler({ prediction_type: 'sample' }), 'prediction_type');
  throwsNaming(() => createPndmScheduler({ timestep_spacing: 'even' }), 'timestep_spacing');
  throwsNaming(() => createPndmScheduler({ skip_prk_steps: 1 }), 'skip_prk_steps');
  throwsNaming(() => createPndmScheduler({ num_train_timesteps: -5 }), 'num_train_timesteps');
});

// --- LCM: tests/schedulers/test_scheduler_lcm.py (scaled_linear 0.00085..0.012, generator seeded 0) ---

const LCM_TEST: SchedulerConfig = {
  num_train_timesteps: 1000,
  beta_start: 0.00085,
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  prediction_type: 'epsilon',
};

test('lcm test_full_loop_onestep: sum 18.7097, mean 0.0244 (one step draws no noise)', () => {
  const generator = constantGenerator(1);
  assertResult(fullLoop(createLcmScheduler(LCM_TEST), 1, undefined, generator), 18.7097, 0.0244, 1e-3);
  assert.equal(generator.draws, []);
});

// test_full_loop_multistep (sum 197.7616, mean 0.2575 in the test version with custom timesteps; the
// first LCM release's test said 280.5618 / 0.3653) re-noises between steps with torch.manual_seed(0)'s
// randn, which createGenerator(0) reproduces. The structure of that noise is checked on its own too:
// drawn before every step but the last, and scaled by sqrt(1 - alphas_cumprod[prev]).
test('lcm test_full_loop_multistep with torch.manual_seed(0) noise: sum 197.7616, mean 0.2575', () => {
  assertResult(fullLoop(createLcmScheduler(LCM_TEST), 10, undefined, createGenerator(0)), 197.7616, 0.2575, 1e-3);
});

test('lcm multistep draws noise between steps only, scaled by sqrt(1 - alphas_cumprod[prev])', () => {
  const generator = constantGenerator(0);
  const quiet = fullLoop(createLcmScheduler(LCM_TEST), 10, undefined, generator);
  assert.equal(generator.draws, new Array(9).fill(SAMPLE_SIZE));
  assert.ok(quiet.every(Number.isFinite));

  const scheduler = createLcmScheduler(LCM_TEST);
  scheduler.setTimesteps(10);
  const sample = dummySample(false);
  const t = scheduler.timesteps[0]!;
  const withoutNoise = scheduler.step(dummyModel(sample, t), t, sample, constantGenerator(0));
  scheduler.setTimesteps(10);
  const withNoise = scheduler.step(dummyModel(sample, t), t, sample, constantGenerator(1));
  const prevAlpha = alphasCumprod(betasFor(LCM_TEST))[scheduler.timesteps[1]!]!;
  const scale = f(Math.sqrt(f(1 - prevAlpha)));
  for (let i = 0; i < SAMPLE_SIZE; i++) {
    assert.ok(Math.abs(withNoise[i]! - withoutNoise[i]! - scale) < 1e-6, `element ${i}`);
  }
  throwsNaming(() => fullLoop(createLcmScheduler(LCM_TEST), 4), 'generator');
});

test('lcm timesteps: every 20th training timestep from 999, picked at evenly spaced indices', () => {
  const scheduler = createLcmScheduler({});
  scheduler.setTimesteps(4);
  assert.equal(scheduler.timesteps, [999, 759, 499, 259]);
  scheduler.setTimesteps(1);
  assert.equal(scheduler.timesteps, [999]);
  // test_inference_steps takes 99, 39, 39 and 19 as the last timesteps of 10, 25, 26 and 50 steps
  // (26 steps: indices floor(i * 50 / 26), so the last is entry 48, not 25 as a stride of 1 would give).
  for (const [steps, last] of [[10, 99], [25, 39], [26, 39], [50, 19]] as const) {
    scheduler.setTimesteps(steps);
    assert.is(scheduler.timesteps.at(-1), last);
  }
  scheduler.setTimesteps(10);
  assert.equal(scheduler.timesteps, range(999, 0, -100));
});

test('lcm rejects bad and unsupported config values and schedules, naming the key', () => {
  throwsNaming(() => createLcmScheduler({ prediction_type: 'flow' }), 'prediction_type');
  throwsNaming(() => createLcmScheduler({ original_inference_steps: 2000 }), 'original_inference_steps');
  throwsNaming(() => createLcmScheduler({ timestep_scaling: '10' }), 'timestep_scaling');
  throwsNaming(() => createLcmScheduler({ thresholding: true }), 'thresholding');
  throwsNaming(() => createLcmScheduler({}).setTimesteps(51), 'num_inference_steps');
  const scheduler = createLcmScheduler({});
  scheduler.setTimesteps(4);
  const sample = dummySample(false);
  throwsNaming(() => scheduler.step(sample, 500, sample, constantGenerator(0)), 'timestep 500');
});

test('all three: scaleModelInput is the identity and initNoiseSigma is 1', () => {
  const sample = dummySample(false);
  for (const scheduler of [createDdimScheduler({}), createPndmScheduler({}), createLcmScheduler({})]) {
    assert.is(scheduler.initNoiseSigma, 1);
    assert.is(scheduler.scaleModelInput(sample, 0), sample);
  }
});

test.run();
