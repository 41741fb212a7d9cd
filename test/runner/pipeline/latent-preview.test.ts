// The latent → RGB approximation of live previews on known latents.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LATENT_RGB_FACTORS, latentPreview, latentToRgb, PREVIEW_MAX_SIDE } from '../../../src/runner/pipeline/latent-preview.ts';
import { decodePng } from '../../../src/runner/pipeline/png.ts';

/** Planar [4, h, w] latents whose cell (x, y) holds `at(c, x, y)` in channel c. */
const latents = (w: number, h: number, at: (c: number, x: number, y: number) => number) =>
  Float32Array.from({ length: 4 * w * h }, (_, i) => at(Math.floor(i / (w * h)), i % w, Math.floor((i % (w * h)) / w)));

test('each channel maps through its factors, [-1, 1] to [0, 255], clamped and rounded', () => {
  // Cell 0: channel 0 at 1 (its row of factors); cell 1: all zero (mid grey); cell 2: channel 3 at 4 (saturates).
  const l = latents(3, 1, (c, x) => (x === 0 && c === 0 ? 1 : x === 2 && c === 3 ? 4 : 0));
  const { width, height, rgb } = latentToRgb(l, 3, 1);
  assert.equal([width, height], [3, 1]);
  const expected0 = LATENT_RGB_FACTORS[0]!.map((f) => Math.round(((f + 1) / 2) * 255));
  assert.equal([...rgb.subarray(0, 3)], expected0);
  assert.equal([...rgb.subarray(3, 6)], [128, 128, 128], '0 → 127.5, rounded half to even');
  // 4 × (-0.212, -0.2616, -0.7177) = (-0.848, -1.046, -2.871): red (1 - 0.848) / 2 × 255 = 19.4, green and blue clamp to 0.
  assert.equal([...rgb.subarray(6, 9)], [19, 0, 0]);
});

test('latent resolution up to 64 a side; larger latents are box-averaged to at most 64', () => {
  assert.equal([latentToRgb(latents(64, 64, () => 0), 64, 64).width, PREVIEW_MAX_SIDE], [64, 64]);
  const big = latentToRgb(latents(128, 64, (c, x) => (c === 0 ? (x % 2 === 0 ? 1 : -1) : 0)), 128, 64);
  assert.equal([big.width, big.height], [64, 32]);
  assert.equal([...big.rgb.subarray(0, 3)], [128, 128, 128], 'a 2×2 box of +1 and -1 averages to 0');
});

test('the preview is a PNG of the latents, well under the progress report bound', () => {
  // Noise is the worst case for PNG size: the first steps' latents look like it.
  let x = 1;
  const noise = latents(64, 64, () => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 30) - 1);
  const png = latentPreview(noise, 64, 64);
  const decoded = decodePng(png);
  assert.equal([decoded.width, decoded.height], [64, 64]);
  assert.ok(png.length < 16 * 1024, `${png.length} bytes`);
});

test.run();
