// Seeded Gaussian noise that reproduces PyTorch's CPU generator value for value, so a seed gives
// the same initial latents here as
// `torch.randn(..., generator=torch.Generator("cpu").manual_seed(seed))` does in a diffusers
// pipeline on x86-64 Linux.
//
// What torch does (aten/src/ATen: core/MT19937RNGEngine.h, CPUGeneratorImpl.cpp,
// core/DistributionsHelper.h, native/cpu/DistributionTemplates.h, native/cpu/avx_mathfun.h):
// - the generator is a 32-bit Mersenne Twister seeded with the low 32 bits of the seed;
// - a contiguous float32 tensor of 16 or more values takes `normal_fill_AVX2`: every element first
//   gets a uniform (low 24 bits of one draw, times 2^-24), then each block of 16 becomes normals by
//   Box-Muller on the pairs (j, j+8) with avx_mathfun's float32 polynomial log and sincos; when the
//   count is not a multiple of 16, the last 16 values are drawn afresh and transformed again.
//   DistributionKernels.cpp keeps this kernel off the AVX-512 dispatch, so every x86-64 CPU with
//   AVX2 runs it, and GCC contracts its mul+add pairs into FMAs, which `fma32` reproduces;
// - fewer than 16 values take `normal_distribution<double>` per element: float64 Box-Muller on
//   53-bit uniforms, returning the cosine half and keeping the sine half in the generator for the
//   next element (the cache survives across calls and the >= 16 path never touches it). V8's
//   log1p/sin/cos may differ from glibc's in a float64's last bit, which changes the float32 result
//   only when that float64 sits on a float32 rounding boundary (about one value in 2^28).

export interface Generator {
  /** The next `count` standard normal values, exactly as torch.randn(count, generator=g) gives. */
  randn(count: number): Float32Array;
}

/** A generator in the state `torch.Generator("cpu").manual_seed(seed)` leaves. */
export function createGenerator(seed: number): Generator {
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new RangeError(`seed must be a non-negative safe integer, got ${seed}`);
  }
  // at::mt19937 keeps only the low 32 bits of torch's 64-bit seed.
  const mt = new Mt19937(seed % 2 ** 32);
  let cachedNormal: number | undefined;

  const uniform53 = (): number => {
    const hi = mt.next();
    const lo = mt.next();
    return ((hi & 0x1fffff) * 2 ** 32 + lo) * 2 ** -53;
  };

  return {
    randn(count: number): Float32Array {
      if (!Number.isSafeInteger(count) || count < 0) {
        throw new RangeError(`count must be a non-negative integer, got ${count}`);
      }
      const out = new Float32Array(count);
      if (count >= BLOCK) {
        fillNormalBlocks(out, mt);
        return out;
      }
      for (let i = 0; i < count; i++) {
        if (cachedNormal !== undefined) {
          out[i] = cachedNormal;
          cachedNormal = undefined;
          continue;
        }
        const u1 = uniform53();
        const u2 = uniform53();
        const r = Math.sqrt(-2 * Math.log1p(-u2));
        const theta = 2 * Math.PI * u1;
        cachedNormal = r * Math.sin(theta);
        out[i] = r * Math.cos(theta);
      }
      return out;
    },
  };
}

const BLOCK = 16;
const HALF = BLOCK / 2;
const f = Math.fround;

/** normal_fill_AVX2 with mean 0 and std 1. */
function fillNormalBlocks(data: Float32Array, mt: Mt19937): void {
  const n = data.length;
  for (let i = 0; i < n; i++) data[i] = uniform24(mt);
  for (let i = 0; i + BLOCK <= n; i += BLOCK) boxMuller16(data, i);
  if (n % BLOCK !== 0) {
    const tail = n - BLOCK;
    for (let i = 0; i < BLOCK; i++) data[tail + i] = uniform24(mt);
    boxMuller16(data, tail);
  }
}

function uniform24(mt: Mt19937): number {
  return (mt.next() & 0xffffff) * 2 ** -24;
}

/** normal_fill_16_AVX2: in place on data[at .. at+16). */
function boxMuller16(data: Float32Array, at: number): void {
  for (let j = at; j < at + HALF; j++) {
    const radius = f(Math.sqrt(f(-2 * log256(f(1 - data[j]!)))));
    sincos256(f(TWO_PI * data[j + HALF]!));
    // torch stores fmadd(n, std = 1, mean = 0); the + 0 turns a -0 into +0 as that does.
    data[j] = f(radius * sincosOut.cos) + 0;
    data[j + HALF] = f(radius * sincosOut.sin) + 0;
  }
}

// _mm256_set1_ps(2.0f * c10::pi<double>): the product is taken in double, then narrowed.
const TWO_PI = f(2 * Math.PI);
// Cephes constants as avx_mathfun.h declares them (float literals, so narrowed to float32).
const SQRTHF = f(0.707106781186547524);
const LOG_P0 = f(7.0376836292e-2);
const LOG_P1 = f(-1.151461031e-1);
const LOG_P2 = f(1.167699874e-1);
const LOG_P3 = f(-1.2420140846e-1);
const LOG_P4 = f(1.4249322787e-1);
const LOG_P5 = f(-1.6668057665e-1);
const LOG_P6 = f(2.0000714765e-1);
const LOG_P7 = f(-2.4999993993e-1);
const LOG_P8 = f(3.3333331174e-1);
const LOG_Q1 = f(-2.12194440e-4);
const LOG_Q2 = f(0.693359375);
const FOPI = f(1.27323954473516);
const MINUS_DP1 = f(-0.78515625);
const MINUS_DP2 = f(-2.4187564849853515625e-4);
const MINUS_DP3 = f(-3.77489497744594108e-8);
const SIN_P0 = f(-1.9515295891e-4);
const SIN_P1 = f(8.3321608736e-3);
const SIN_P2 = f(-1.6666654611e-1);
const COS_P0 = f(2.443315711809948e-5);
const COS_P1 = f(-1.388731625493765e-3);
const COS_P2 = f(4.166664568298827e-2);

const bitsF32 = new Float32Array(1);
const bitsU32 = new Uint32Array(bitsF32.buffer);

/**
 * log256_ps for one lane, for x in (0, 1] (the only inputs Box-Muller gives it). Each fma32 marks
 * a mul+add pair that GCC fuses in the AVX2 build: a product feeding only an add is fused, and
 * where an add has two products (y*z + e*q1) the one computed first is.
 */
function log256(x0: number): number {
  bitsF32[0] = x0;
  const bits = bitsU32[0]!;
  let e = (bits >>> 23) - 0x7f + 1;
  bitsU32[0] = (bits & ~0x7f800000) | 0x3f000000;
  let x = bitsF32[0]!;
  let tmp = 0;
  if (x < SQRTHF) {
    tmp = x;
    e -= 1;
  }
  x = f(f(x - 1) + tmp);
  const z = f(x * x);
  let y = fma32(LOG_P0, x, LOG_P1);
  y = fma32(y, x, LOG_P2);
  y = fma32(y, x, LOG_P3);
  y = fma32(y, x, LOG_P4);
  y = fma32(y, x, LOG_P5);
  y = fma32(y, x, LOG_P6);
  y = fma32(y, x, LOG_P7);
  y = fma32(y, x, LOG_P8);
  y = f(y * x);
  y = fma32(y, z, f(e * LOG_Q1));
  y = fma32(-z, 0.5, y);
  x = f(x + y);
  return fma32(e, LOG_Q2, x);
}

const sincosOut = { sin: 0, cos: 0 };

/** sincos256_ps for one lane, for x >= 0 (theta = 2*pi*u2); writes into `sincosOut`. */
function sincos256(x0: number): void {
  const j = (Math.trunc(f(x0 * FOPI)) + 1) & ~1;
  let x = fma32(j, MINUS_DP1, x0);
  x = fma32(j, MINUS_DP2, x);
  x = fma32(j, MINUS_DP3, x);
  const z = f(x * x);

  let yc = fma32(COS_P0, z, COS_P1);
  yc = fma32(yc, z, COS_P2);
  yc = f(yc * z);
  yc = fma32(yc, z, -f(z * 0.5));
  yc = f(yc + 1);

  let ys = fma32(SIN_P0, z, SIN_P1);
  ys = fma32(ys, z, SIN_P2);
  ys = f(ys * z);
  ys = fma32(ys, x, x);

  // The lanes are selected by masking and adding +0, which turns a -0 into +0.
  const sinPoly = (j & 2) === 0;
  const sin = (sinPoly ? ys : yc) + 0;
  const cos = (sinPoly ? yc : ys) + 0;
  sincosOut.sin = (j & 4) !== 0 ? -sin : sin;
  sincosOut.cos = (~(j - 2) & 4) !== 0 ? -cos : cos;
}

/**
 * Single-rounding float32 a*b + c for float32 inputs. The product is exact in a double, so only
 * the sum rounds twice (to double, then to float32); that differs from one rounding only when the
 * double sum lands exactly halfway between two floats, where the sum's exact error decides.
 */
function fma32(a: number, b: number, c: number): number {
  const p = a * b;
  const s = p + c;
  const r = f(s);
  const other = r + 2 * (s - r);
  return other !== r && f(other) === other ? roundTie(p, c, s, r, other) : r;
}

/** s = p + c lies halfway between the floats r and other: the exact error of s picks the side. */
function roundTie(p: number, c: number, s: number, r: number, other: number): number {
  const pp = s - c;
  const err = p - pp + (c - (s - pp));
  if (err === 0) return r;
  return (err > 0) === (other > r) ? other : r;
}

const MT_N = 624;
const MT_M = 397;

/** at::mt19937: the reference 32-bit Mersenne Twister, seeded as its init_genrand does. */
export class Mt19937 {
  private readonly state = new Uint32Array(MT_N);
  private index = MT_N;

  constructor(seed: number) {
    const s = this.state;
    s[0] = seed;
    for (let i = 1; i < MT_N; i++) {
      const prev = s[i - 1]!;
      s[i] = Math.imul(1812433253, prev ^ (prev >>> 30)) + i;
    }
  }

  /** The next 32-bit output, as an unsigned integer. */
  next(): number {
    if (this.index === MT_N) this.twist();
    let y = this.state[this.index++]!;
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  private twist(): void {
    const s = this.state;
    for (let i = 0; i < MT_N; i++) {
      const y = (s[i]! & 0x80000000) | (s[(i + 1) % MT_N]! & 0x7fffffff);
      s[i] = s[(i + MT_M) % MT_N]! ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
    }
    this.index = 0;
  }
}
