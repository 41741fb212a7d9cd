// The WebAssembly SIMD kernels against the JS loops they replace (guidance, and the schedulers' steps
// in Stable Diffusion's configuration): the same bits on random data of every magnitude and on lengths
// that are not whole vectors, and the JS loops where SIMD is missing.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  type DdimCoefficients,
  jsKernels,
  kernelModuleBytes,
  kernels,
  type LcmCoefficients,
  type PndmCoefficients,
  selectKernels,
} from '../../../src/runner/pipeline/kernels/index.ts';

const f = Math.fround;
const SIZES = [0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 1023, 16384, 16387, 65539];

/** A small deterministic generator (mulberry32), so that a failure reproduces. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** Signed values spread over many binades, where float32 and float64 rounding differ most. */
function floats(n: number, next: () => number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (next() - 0.5) * 2 ** Math.floor(next() * 48 - 24);
  return out;
}

const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);

function assertSameBits(actual: Float32Array, expected: Float32Array, what: string) {
  assert.is(actual.length, expected.length, `${what}: length`);
  const a = bits(actual);
  const e = bits(expected);
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== e[i]) assert.unreachable(`${what}: element ${i} is ${actual[i]}, the JS loop gives ${expected[i]}`);
  }
}

// Today's loops, as they were written inline in txt2img.ts and ddim.ts before simd.ts.
function referenceGuidance(prediction: Float32Array, g: number): Float32Array {
  const half = prediction.length >>> 1;
  for (let k = 0; k < half; k++) {
    const uncond = prediction[k]!;
    prediction[k] = uncond + g * (prediction[k + half]! - uncond);
  }
  return prediction.subarray(0, half);
}

function referenceDdim(sample: Float32Array, modelOutput: Float32Array, b: number, a: number, ap: number, d: number): Float32Array {
  const prev = new Float32Array(sample.length);
  for (let i = 0; i < sample.length; i++) {
    const x = sample[i]!;
    const m = modelOutput[i]!;
    prev[i] = f(f(ap * f(f(x - f(b * m)) / a)) + f(d * m));
  }
  return prev;
}

// The named coefficients from the positional lists the tests draw, in the order the kernels' doc gives them.
const ddim = ([sqrtBeta, sqrtAlpha, sqrtAlphaPrev, directionCoeff]: readonly number[]): DdimCoefficients => ({
  sqrtBeta: sqrtBeta!,
  sqrtAlpha: sqrtAlpha!,
  sqrtAlphaPrev: sqrtAlphaPrev!,
  directionCoeff: directionCoeff!,
});
const pndm = ([sampleCoeff, alphaDiff, denomCoeff]: readonly number[]): PndmCoefficients => ({
  sampleCoeff: sampleCoeff!,
  alphaDiff: alphaDiff!,
  denomCoeff: denomCoeff!,
});
const lcm = ([sqrtBeta, sqrtAlpha, cOut, cSkip, sqrtAlphaPrev, sqrtBetaPrev]: readonly number[]): LcmCoefficients => ({
  sqrtBeta: sqrtBeta!,
  sqrtAlpha: sqrtAlpha!,
  cOut: cOut!,
  cSkip: cSkip!,
  sqrtAlphaPrev: sqrtAlphaPrev!,
  sqrtBetaPrev: sqrtBetaPrev!,
});

test('the module validates and the pipeline uses the SIMD kernels (Node 24 has WebAssembly SIMD)', () => {
  assert.ok(WebAssembly.validate(kernelModuleBytes()));
  assert.is.not(kernels, jsKernels);
});

test('without WebAssembly SIMD the JS loops run, and they are the loops the pipeline had', () => {
  assert.is(selectKernels(() => false), jsKernels);
  const next = random(1);
  for (const n of SIZES) {
    const prediction = floats(2 * n, next);
    const expected = prediction.slice();
    assertSameBits(jsKernels.guidance(prediction, 7.5), referenceGuidance(expected, 7.5), `guidance n=${n}`);
    assertSameBits(prediction, expected, `guidance n=${n}, the whole array`);
    const x = floats(n, next);
    const m = floats(n, next);
    const c = [f(0.6), f(0.8), f(0.7), f(0.71)] as const;
    assertSameBits(jsKernels.ddimEpsilon(x, m, ddim(c)), referenceDdim(x, m, ...c), `ddim n=${n}`);
  }
});

test('guidance: SIMD and JS give the same bits, written over the uncond half only', () => {
  const next = random(2);
  for (const n of SIZES) {
    for (const g of [7.5, 1.5, 12.345678901, 1 + next() * 20]) {
      const prediction = floats(2 * n, next);
      const viaJs = prediction.slice();
      const result = kernels.guidance(prediction, g);
      const expected = jsKernels.guidance(viaJs, g);
      assert.is(result.buffer, prediction.buffer, 'in place');
      assertSameBits(result, expected, `n=${n}, g=${g}`);
      assertSameBits(prediction, viaJs, `n=${n}, g=${g}, the whole array`);
    }
  }
});

test('guidance: an odd length leaves the last element alone, as the JS loop does', () => {
  const prediction = Float32Array.from([1, 2, 3, 4, 5, 6, 7]);
  const expected = jsKernels.guidance(prediction.slice(), 2);
  assertSameBits(kernels.guidance(prediction, 2), expected, 'odd length');
  assert.is(prediction[6], 7);
});

test('ddim epsilon step: SIMD and JS give the same bits into a fresh array', () => {
  const next = random(3);
  for (const n of SIZES) {
    for (let rep = 0; rep < 4; rep++) {
      const x = floats(n, next);
      const m = floats(n, next);
      const before = x.slice();
      const c = [f(next()), f(0.01 + next()), f(next()), f(next())] as const;
      const result = kernels.ddimEpsilon(x, m, ddim(c));
      assertSameBits(result, jsKernels.ddimEpsilon(x, m, ddim(c)), `n=${n}, coefficients ${c.join(', ')}`);
      assert.is.not(result.buffer, x.buffer);
      assertSameBits(x, before, 'the sample is left alone');
      // The caller owns the result: the next call must not write into it.
      const kept = result.slice();
      kernels.ddimEpsilon(m, x, ddim(c));
      assertSameBits(result, kept, 'an earlier result after the next call');
    }
  }
});

// The scheduler kernels, each called with its operand arrays and float32 coefficients.
type KernelCall = (k: typeof kernels, arrays: Float32Array[], c: number[]) => Float32Array;
const SCHEDULER_KERNELS: [name: string, arrays: number, coefficients: number, call: KernelCall][] = [
  ['divide', 1, 1, (k, [x], [d]) => k.divide(x!, d!)],
  ['eulerEpsilon', 2, 2, (k, [x, m], [s, dt]) => k.eulerEpsilon(x!, m!, s!, dt!)],
  ['eulerAncestralEpsilon', 3, 3, (k, [x, m, z], [s, dt, up]) => k.eulerAncestralEpsilon(x!, m!, z!, { sigma: s!, dt: dt!, sigmaUp: up! })],
  ['dpmDataPrediction', 2, 2, (k, [x, m], [s, a]) => k.dpmDataPrediction(x!, m!, s!, a!)],
  ['dpmFirstOrder', 2, 2, (k, [x, m], [a, b]) => k.dpmFirstOrder(x!, m!, a!, b!)],
  ['dpmSecondOrder', 3, 4, (k, [x, m0, m1], [a, b, c, r]) => k.dpmSecondOrder(x!, m0!, m1!, { a: a!, b: b!, c: c!, invR0: r! })],
  ...[1, 2, 3, 4].map((count): [string, number, number, KernelCall] => [
    `plms with ${count} model output(s)`, 1 + count, 3, (k, [x, ...ets], [a, b, c]) => k.plms(x!, ets, pndm([a!, b!, c!])),
  ]),
  ['plmsRepeat', 3, 3, (k, [x, m, e], [a, b, c]) => k.plmsRepeat(x!, m!, e!, pndm([a!, b!, c!]))],
  ['lcmEpsilon', 3, 6, (k, [x, m, z], c) => k.lcmEpsilon(x!, m!, z!, lcm(c))],
  ['lcmEpsilon, last step', 2, 6, (k, [x, m], c) => k.lcmEpsilon(x!, m!, undefined, lcm(c))],
];

for (const [name, arrays, coefficients, call] of SCHEDULER_KERNELS) {
  test(`${name}: SIMD and JS give the same bits into a fresh array, the operands left alone`, () => {
    const next = random(name.length * 7919 + arrays);
    for (const n of SIZES) {
      for (let rep = 0; rep < 4; rep++) {
        const operands = Array.from({ length: arrays }, () => floats(n, next));
        const before = operands.map((a) => a.slice());
        // Coefficients of ordinary size, and on some repetitions of every magnitude and sign.
        const c = Array.from({ length: coefficients }, () => f(rep < 2 ? 0.01 + next() : floats(1, next)[0]! || 1));
        const result = call(kernels, operands, c);
        const what = `n=${n}, coefficients ${c.join(', ')}`;
        assertSameBits(result, call(jsKernels, operands, c), what);
        for (const a of operands) assert.is.not(result.buffer, a.buffer, `${what}: a fresh array`);
        operands.forEach((a, k) => assertSameBits(a, before[k]!, `${what}: operand ${k} is left alone`));
        const kept = result.slice();
        call(kernels, operands.slice().reverse(), c);
        assertSameBits(result, kept, `${what}: an earlier result after the next call`);
      }
    }
  });
}

test('scheduler kernels: a shorter operand gives what the JS loop gives (NaN where it reads past the end)', () => {
  const next = random(4);
  for (const [name, arrays, coefficients, call] of SCHEDULER_KERNELS) {
    if (arrays < 2) continue;
    for (let short = 1; short < arrays; short++) {
      const operands = Array.from({ length: arrays }, (_, k) => floats(k === short ? 13 : 17, next));
      const c = Array.from({ length: coefficients }, () => f(0.01 + next()));
      const viaJs = call(jsKernels, operands, c);
      const result = call(kernels, operands, c);
      assert.is(result.length, viaJs.length, name);
      for (let i = 0; i < result.length; i++) {
        if (!Object.is(result[i], viaJs[i])) assert.unreachable(`${name}, operand ${short} shorter: element ${i} is ${result[i]}, the JS loop gives ${viaJs[i]}`);
      }
    }
  }
});

test('infinities, zeros and subnormals give the same bits too', () => {
  const special = Float32Array.from([0, -0, Infinity, -Infinity, 1e-45, -1e-45, 1.1754942e-38, 3.4028235e38, -3.4028235e38, 1, -1, 0.5]);
  const n = special.length;
  const x = new Float32Array(n * n);
  const m = new Float32Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      x[i * n + j] = special[i]!;
      m[i * n + j] = special[j]!;
    }
  }
  const sameOrBothNaN = (a: Float32Array, b: Float32Array, what: string) => {
    assert.is(a.length, b.length);
    for (let i = 0; i < a.length; i++) {
      if (Number.isNaN(a[i]) && Number.isNaN(b[i])) continue;
      if (!Object.is(a[i], b[i])) assert.unreachable(`${what}: element ${i} is ${a[i]}, the JS loop gives ${b[i]}`);
    }
  };
  const c = [f(0.3), f(0.9), f(0.95), f(0.2)] as const;
  sameOrBothNaN(kernels.ddimEpsilon(x, m, ddim(c)), jsKernels.ddimEpsilon(x, m, ddim(c)), 'ddim');
  const prediction = new Float32Array(2 * n * n);
  prediction.set(x, 0);
  prediction.set(m, n * n);
  const viaJs = prediction.slice();
  sameOrBothNaN(kernels.guidance(prediction, 7.5), jsKernels.guidance(viaJs, 7.5), 'guidance');
  for (const [name, arrays, coefficients, call] of SCHEDULER_KERNELS) {
    // The specials against each other in the first two operands, the rest from them shifted.
    const operands = [x, m, m.slice().reverse(), x.slice().reverse(), x.map((_, i) => m[(i * 7) % m.length]!)].slice(0, arrays);
    for (const cs of [[0.3, 0.9, 0.95, 0.2, 0.7, 0.4], [0, -0, 1e-45, 3.4028235e38, -1, Infinity]]) {
      const c = cs.slice(0, coefficients).map(f);
      sameOrBothNaN(call(kernels, operands, c), call(jsKernels, operands, c), `${name}, coefficients ${c.join(', ')}`);
    }
  }
});

test.run();
