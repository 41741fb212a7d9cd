// Where generated images live: Google Cloud Storage in production, a folder under DATA_DIR when
// embedded. The runner stores (putImage); the gateway links or serves (linkFor, read), and stores
// the thumbnails it makes from them beside them (putThumbnail, src/gateway/thumbnails.ts).
export interface StoredImageRef {
  /** Object key, e.g. generated/{id}/0.png */
  key: string;
  /** A link that stays valid, when the store has one (a public bucket); otherwise the gateway links on demand. */
  url?: string;
}

export interface PutImageInput {
  generationId: string;
  index: number;
  png: Buffer;
  seed: number;
}

export interface ImageStore {
  readonly kind: 'gcs' | 'local';
  /**
   * The origin linkFor's URLs point at (https://storage.googleapis.com, or the configured
   * endpoint's), for the web page's Content-Security-Policy: the page fetches an image from the
   * gateway, which redirects there, so its connect-src and img-src must name this origin.
   * Undefined when the gateway serves the bytes itself (same origin as the page).
   */
  readonly origin?: string;
  /** Stores image `index` of a generation; resolves once it is durable. Safe to repeat (same key, same bytes). */
  putImage(input: PutImageInput): Promise<StoredImageRef>;
  /** A URL to send the client to (V4 signed or public for GCS), or null when the gateway serves the bytes itself. */
  linkFor(key: string): Promise<string | null>;
  /** The stored bytes, or null when there is no such object. */
  read(key: string): Promise<Buffer | null>;
  /** Whether an object is stored at `key` (a key of neither shape is never stored). */
  exists(key: string): Promise<boolean>;
  /**
   * Stores the WebP thumbnail of the image at `imageKey`, at thumbnailKey(imageKey); resolves once
   * it is durable. Safe to repeat and to race: every copy is the same picture, so whichever is
   * there stays.
   */
  putThumbnail(imageKey: string, webp: Buffer): Promise<void>;
  /**
   * Removes these objects; resolves once they are gone. Safe to repeat: a key with no object is
   * no error, and a key not of imageKey's or thumbnailKey's shape is skipped (nothing of ours can
   * be there).
   */
  delete(keys: string[]): Promise<void>;
}

export const imageKey = (generationId: string, index: number) => `generated/${generationId}/${index}.png`;

/** Longest side of a thumbnail, in pixels; part of its key, so another size would never be mistaken for it. */
export const THUMBNAIL_SIZE = 256;

/**
 * Where the thumbnail of the image at `key` is stored: beside it, generated/{id}/{n}.thumb256.webp.
 * Never `key` itself, so a thumbnail cannot overwrite its image.
 */
export const thumbnailKey = (key: string) => `${key.replace(/\.png$/, '')}.thumb${THUMBNAIL_SIZE}.webp`;

/** The image keys and the keys of their thumbnails: what deleting a generation removes (a thumbnail never made is no error). */
export const storedKeys = (imageKeys: string[]) => imageKeys.flatMap((key) => [key, thumbnailKey(key)]);

const imageKeyPattern = new RegExp(
  `^generated/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/(0|[1-9][0-9]{0,5})\\.(png|thumb${THUMBNAIL_SIZE}\\.webp)$`,
  'i',
);

/**
 * Whether `key` has one of the shapes imageKey and thumbnailKey produce; stores refuse any other
 * key, so none can reach outside its images.
 */
export const isImageKey = (key: string) => imageKeyPattern.test(key);
