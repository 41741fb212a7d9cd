// Thumbnails for the web app's gallery (GET /v1/generations/{id}/images/{n}/thumbnail): a WebP,
// longest side THUMBNAIL_SIZE, made with sharp from the stored PNG on the first request and stored
// beside it (thumbnailKey), so every later request reads a few kilobytes instead of the PNG.
// Rendering is the one CPU-heavy thing the gateway does, so it is bounded: RENDERS_AT_ONCE renders
// at a time, one libvips thread each, and concurrent requests for the same thumbnail share one render.
import { createHash } from 'node:crypto';
import type { Counter } from 'prom-client';
import sharp from 'sharp';
import { AppError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { THUMBNAIL_SIZE, thumbnailKey, type ImageStore } from '../storage/types.ts';

/** Two renders use at most two cores; a third request waits its turn rather than slowing every request down. */
const RENDERS_AT_ONCE = 2;
/**
 * Four times the largest image a model makes (1024², src/core/request.ts): more is no image of
 * ours, and decoding it would only cost memory and CPU.
 */
const MAX_INPUT_PIXELS = 2048 * 2048;
/**
 * Thumbnails known to be stored (GCS), so their requests skip the existence check; bounded, oldest
 * forgotten first. An entry outliving its deleted generation is harmless: requests for it are
 * refused on the row before they get here.
 */
const KNOWN_STORED = 10_000;
const WEBP_QUALITY = 80;

/** Where the thumbnail is: a link to send the client to (GCS), or its bytes with their strong ETag (local folder). */
export type Thumbnail = { link: string } | { webp: Buffer; etag: string };

export interface Thumbnails {
  /** The thumbnail of the image at `imageKey`, made and stored on first use; null when the image is not in storage. */
  get(imageKey: string): Promise<Thumbnail | null>;
}

export function createThumbnails(o: { images: ImageStore; log: Logger; rendered: Counter }): Thumbnails {
  // libvips would otherwise use a thread per core for each render; with RENDERS_AT_ONCE this caps the cores used.
  sharp.concurrency(1);
  // Each image is rendered once, so libvips' operation cache would only hold memory.
  sharp.cache(false);
  const slot = semaphore(RENDERS_AT_ONCE);
  const inFlight = new Map<string, Promise<Buffer | null>>();
  const stored = new Set<string>();

  /**
   * Reads the PNG, renders and stores its thumbnail; null when the PNG is not there. One at a time
   * per key. A DELETE during a render may find no thumbnail yet and this one stored after it: the
   * retention sweep removes a deleted generation's images and thumbnails again (retention.ts).
   */
  const make = (imageKey: string): Promise<Buffer | null> => {
    let making = inFlight.get(imageKey);
    if (!making) {
      making = (async () => {
        // The read inside the slot too, so renders waiting their turn hold no PNG in memory.
        const webp = await slot(async () => {
          const png = await o.images.read(imageKey);
          return png ? render(png, imageKey, o.log) : null;
        });
        if (!webp) return null;
        await o.images.putThumbnail(imageKey, webp);
        o.rendered.inc();
        return webp;
      })().finally(() => inFlight.delete(imageKey));
      inFlight.set(imageKey, making);
    }
    return making;
  };

  return {
    async get(imageKey) {
      const key = thumbnailKey(imageKey);
      const link = await o.images.linkFor(key);
      if (link) {
        if (!stored.has(key) && !(await o.images.exists(key)) && !(await make(imageKey))) return null;
        if (stored.size >= KNOWN_STORED) stored.delete(stored.values().next().value as string);
        stored.add(key);
        return { link };
      }
      const webp = (await o.images.read(key)) ?? (await make(imageKey));
      return webp ? { webp, etag: `"${createHash('sha256').update(webp).digest('base64url')}"` } : null;
    },
  };
}

async function render(png: Buffer, imageKey: string, log: Logger): Promise<Buffer> {
  try {
    // failOn 'error': a truncated or corrupt PNG is refused instead of rendered half grey; sharp
    // drops the PNG's text chunks (the infotext), which a gallery picture does not need.
    return await sharp(png, { limitInputPixels: MAX_INPUT_PIXELS, failOn: 'error' })
      .resize(THUMBNAIL_SIZE, THUMBNAIL_SIZE, { fit: 'inside', withoutEnlargement: true })
      .webp({ quality: WEBP_QUALITY })
      .toBuffer();
  } catch (err) {
    log.error('a stored image could not be made into a thumbnail', { err, key: imageKey });
    throw new AppError(422, 'image_unreadable', 'The stored image cannot be decoded, so it has no thumbnail; the full image (without /thumbnail) is what storage holds.');
  }
}

/** Runs at most `n` tasks at once; the others wait, first come first served. */
export function semaphore(n: number) {
  let running = 0;
  const waiting: (() => void)[] = [];
  return async <T>(task: () => Promise<T>): Promise<T> => {
    if (running < n) running++;
    else await new Promise<void>((resolve) => waiting.push(resolve));
    try {
      return await task();
    } finally {
      // A waiting task takes over the slot; otherwise it is free again.
      const next = waiting.shift();
      if (next) next();
      else running--;
    }
  };
}
