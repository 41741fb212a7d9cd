// Where generated images live: Google Cloud Storage in production, a folder under DATA_DIR when
// embedded. The runner stores (putImage); the gateway links or serves (linkFor, read).
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
  /** Stores image `index` of a generation; resolves once it is durable. Safe to repeat (same key, same bytes). */
  putImage(input: PutImageInput): Promise<StoredImageRef>;
  /** A URL to send the client to (V4 signed or public for GCS), or null when the gateway serves the bytes itself. */
  linkFor(key: string): Promise<string | null>;
  /** The stored bytes, or null when there is no such object. */
  read(key: string): Promise<Buffer | null>;
  /**
   * Removes these objects; resolves once they are gone. Safe to repeat: a key with no object is
   * no error, and a key not of imageKey's shape is skipped (nothing of ours can be there).
   */
  delete(keys: string[]): Promise<void>;
}

export const imageKey = (generationId: string, index: number) => `generated/${generationId}/${index}.png`;

const imageKeyPattern = /^generated\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\/(0|[1-9][0-9]{0,5})\.png$/i;

/** Whether `key` has the one shape imageKey produces; stores refuse any other key, so none can reach outside its images. */
export const isImageKey = (key: string) => imageKeyPattern.test(key);
