// Live previews: a small picture of latents mid-denoising without running the VAE. SD 1.5's four
// latent channels map to RGB nearly linearly; the 4×3 factors below are the widely used fit of
// that map (the "latent preview" of ComfyUI and AUTOMATIC1111's cheap approximation), giving one
// pixel per latent cell, i.e. an eighth of the image's size. Cost: one multiply-add pass over the
// latents and a PNG of at most PREVIEW_MAX_SIDE² pixels.
import { encodePng, type PngImage } from './png.ts';

/** Rows: latent channels 0–3; columns: their weight in R, G, B. */
export const LATENT_RGB_FACTORS: readonly (readonly [number, number, number])[] = [
  [0.3512, 0.2297, 0.3227],
  [0.325, 0.4974, 0.235],
  [-0.2829, 0.1762, 0.2721],
  [-0.212, -0.2616, -0.7177],
];

/**
 * Longest side of a preview, in pixels: latent resolution up to 512², box-averaged beyond (1024²
 * gives 64×64 too), so a preview PNG stays far below the progress report's size bound.
 */
export const PREVIEW_MAX_SIDE = 64;

/**
 * One image's planar latents [4, height, width] → RGB pixels: each channel weighted by
 * LATENT_RGB_FACTORS, [-1, 1] mapped to [0, 255] (clamped, rounded), averaged over boxes of
 * `factor`² cells when the latents are wider or taller than PREVIEW_MAX_SIDE.
 */
export function latentToRgb(latents: Float32Array, width: number, height: number): PngImage {
  const cells = width * height;
  if (latents.length !== 4 * cells) throw new RangeError(`expected ${4 * cells} latent values, got ${latents.length}`);
  const factor = Math.max(1, Math.ceil(Math.max(width, height) / PREVIEW_MAX_SIDE));
  const outW = Math.floor(width / factor);
  const outH = Math.floor(height / factor);
  const rgb = new Uint8ClampedArray(outW * outH * 3);
  const mean = [0, 0, 0, 0];
  const perBox = 1 / (factor * factor);
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      for (let c = 0; c < 4; c++) {
        let sum = 0;
        const plane = c * cells;
        for (let dy = 0; dy < factor; dy++) {
          const row = plane + (y * factor + dy) * width + x * factor;
          for (let dx = 0; dx < factor; dx++) sum += latents[row + dx]!;
        }
        mean[c] = sum * perBox;
      }
      const out = (y * outW + x) * 3;
      for (let k = 0; k < 3; k++) {
        let v = 0;
        for (let c = 0; c < 4; c++) v += mean[c]! * LATENT_RGB_FACTORS[c]![k]!;
        rgb[out + k] = ((v + 1) / 2) * 255;
      }
    }
  }
  return { width: outW, height: outH, rgb: new Uint8Array(rgb.buffer) };
}

/** The preview PNG of one image's latents (no text chunks: it is a picture, not a result). */
export function latentPreview(latents: Float32Array, width: number, height: number): Buffer {
  return encodePng(latentToRgb(latents, width, height));
}
