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

/**
 * One generator per image of a batch, as AUTOMATIC1111 gives each image its own seed: a draw of
 * `count` values takes count / seeds.length from each image's generator in turn, so image i's
 * initial noise and every later step's noise are what a batch of one with seed i would draw. A
 * single seed gives that seed's generator itself.
 */
export function createBatchGenerator(seeds: readonly number[]): Generator {
  if (seeds.length === 0) throw new RangeError('a batch needs at least one seed');
  if (seeds.length === 1) return createGenerator(seeds[0]!);
  const generators = seeds.map(createGenerator);
  return {
    randn(count: number): Float32Array {
      if (count % generators.length !== 0) {
        throw new RangeError(`count ${count} does not split evenly over a batch of ${generators.length}`);
      }
      const per = count / generators.length;
      const out = new Float32Array(count);
      generators.forEach((g, i) => out.set(g.randn(per), i * per));
      return out;
    },
  };
}

const BLOCK = 16;
const HALF = BLOCK / 2;
const f = Math.fround;

/** normal_fill_AVX2 with mean 0 and std 1. */
function fillNormalBlocks(data: Float32Array, mt: Mt19937): void {
  // torch first draws every uniform, then transforms each block of 16 in place. A block depends
  // only on its own 16 draws, so drawing and transforming one block at a time gives the same
  // values; the draws of a partial last block are made and thrown away, then the redrawn tail.
  const n = data.length;
  const draws = blockDraws;
  for (let at = 0; at + BLOCK <= n; at += BLOCK) {
    mt.fill(draws);
    boxMuller16(data, at, draws);
  }
  if (n % BLOCK !== 0) {
    mt.skip(n % BLOCK);
    mt.fill(draws);
    boxMuller16(data, n - BLOCK, draws);
  }
}

const blockDraws = new Uint32Array(BLOCK);

/**
 * normal_fill_16_AVX2 on the uniforms of 16 draws, written to data[at .. at+16): lane j pairs
 * draws j and j+8. The 8 lanes go through log, then through sincos, as two loops whose bodies are
 * small enough for V8 to inline the fma32 calls in them.
 */
function boxMuller16(data: Float32Array, at: number, draws: Uint32Array): void {
  logLanes(draws);
  sincosLanes(draws);
  for (let j = 0; j < HALF; j++) {
    const radius = f(Math.sqrt(f(-2 * lanes.log[j]!)));
    // torch stores fmadd(n, std = 1, mean = 0); the + 0 turns a -0 into +0 as that does.
    data[at + j] = f(radius * lanes.cos[j]!) + 0;
    data[at + j + HALF] = f(radius * lanes.sin[j]!) + 0;
  }
}

/** Per-lane results of logLanes and sincosLanes. */
const lanes = {
  log: new Float64Array(HALF),
  sin: new Float64Array(HALF),
  cos: new Float64Array(HALF),
};

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

/**
 * log256_ps on the 8 lanes' x = 1 - u1 (into `lanes.log`). The uniform of a draw is its low 24
 * bits times 2^-24, so x is m * 2^-24 exactly for the integer m = 2^24 - low24 in [1, 2^24]. Each
 * fma32 marks a mul+add pair that GCC fuses in the AVX2 build: a product feeding only an add is
 * fused, and where an add has two products (y*z + e*q1) the one computed first is. Where the
 * product is exact in float32, the fused result is just the float32 sum, `f(a*b + c)` (rounding a
 * sum of two floats to double first never changes its float32 rounding, as 53 >= 2*24 + 2).
 */
function logLanes(draws: Uint32Array): void {
  for (let j = 0; j < HALF; j++) {
    const m = 2 ** 24 - (draws[j]! & 0xffffff);
    // frexp as the kernel does it on the float's bits: x = m * 2^-bits in [0.5, 1) and
    // e = bits - 24, where m has `bits` significant bits.
    const bits = 32 - Math.clz32(m);
    let e = bits - 24;
    let x = m * INV_POW2[bits]!;
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
    y = f(y - z * 0.5); // fma(-z, 0.5, y), the product exact
    x = f(x + y);
    lanes.log[j] = f(e * LOG_Q2 + x); // fma(e, q2, x), the product exact
  }
}

// 2^-k for the bit lengths of m in logLanes.
const INV_POW2 = Float64Array.from({ length: 26 }, (_, k) => 2 ** -k);

/** sincos256_ps on the 8 lanes' x = 2*pi*u2 (into `lanes.sin` and `lanes.cos`). */
function sincosLanes(draws: Uint32Array): void {
  for (let lane = 0; lane < HALF; lane++) {
    // _mm256_set1_ps(2.0f * c10::pi<double>) times the uniform, in float32.
    const x0 = f(TWO_PI * ((draws[lane + HALF]! & 0xffffff) * 2 ** -24));
    // x0 * 4/pi < 8 here, so `| 0` truncates as the kernel's float-to-int conversion does.
    const j = ((f(x0 * FOPI) | 0) + 1) & ~1;
    // fma(j, -dp1, x0) and fma(j, -dp2, x) as float32 sums (see logLanes): j is 0, 2, 4, 6 or 8
    // and dp1, dp2 have at most 11 significant bits, so these products are exact.
    let x = f(x0 + j * MINUS_DP1);
    x = f(x + j * MINUS_DP2);
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
    lanes.sin[lane] = (j & 4) !== 0 ? -sin : sin;
    lanes.cos[lane] = (~(j - 2) & 4) !== 0 ? -cos : cos;
  }
}

/**
 * Single-rounding float32 a*b + c for float32 inputs. The product is exact in a double, so only
 * the sum rounds twice (to double, then to float32); that differs from one rounding only when the
 * double sum lands exactly halfway between two floats, where the sum's exact error decides.
 */
function fma32(a: number, b: number, c: number): number {
  const s = a * b + c;
  const r = f(s);
  const other = r + 2 * (s - r);
  // Kept small for V8 to inline; the rare tie goes to a separate function.
  return other === r || f(other) !== other ? r : fma32Tie(a, b, c);
}

/** fma32 where s = a*b + c lies halfway between two floats: the exact error of s picks the side. */
function fma32Tie(a: number, b: number, c: number): number {
  const p = a * b;
  const s = p + c;
  const r = f(s);
  const other = r + 2 * (s - r);
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
    return temper(this.state[this.index++]!);
  }

  /** Fills `out` with the next outputs, as `next` would give them one by one. */
  fill(out: Uint32Array): void {
    const s = this.state;
    let index = this.index;
    for (let k = 0; k < out.length; k++) {
      if (index === MT_N) {
        this.twist();
        index = 0;
      }
      out[k] = temper(s[index++]!);
    }
    this.index = index;
  }

  /** Advances past the next `count` outputs. */
  skip(count: number): void {
    for (let k = 0; k < count; k++) {
      if (this.index === MT_N) this.twist();
      this.index++;
    }
  }

  private twist(): void {
    // The reference loop with `(i + 1) % N` and `(i + M) % N` unrolled into its three ranges.
    const s = this.state;
    let i = 0;
    for (; i < MT_N - MT_M; i++) {
      const y = (s[i]! & 0x80000000) | (s[i + 1]! & 0x7fffffff);
      s[i] = s[i + MT_M]! ^ (y >>> 1) ^ (-(y & 1) & 0x9908b0df);
    }
    for (; i < MT_N - 1; i++) {
      const y = (s[i]! & 0x80000000) | (s[i + 1]! & 0x7fffffff);
      s[i] = s[i + MT_M - MT_N]! ^ (y >>> 1) ^ (-(y & 1) & 0x9908b0df);
    }
    const y = (s[MT_N - 1]! & 0x80000000) | (s[0]! & 0x7fffffff);
    s[MT_N - 1] = s[MT_M - 1]! ^ (y >>> 1) ^ (-(y & 1) & 0x9908b0df);
    this.index = 0;
  }
}

/** MT19937's output tempering. */
function temper(y: number): number {
  y ^= y >>> 11;
  y ^= (y << 7) & 0x9d2c5680;
  y ^= (y << 15) & 0xefc60000;
  y ^= y >>> 18;
  return y >>> 0;
}
