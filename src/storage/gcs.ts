// Images in a Google Cloud Storage bucket, for production. The runner uploads; the gateway sends
// clients to a V4 signed URL (or the public URL of a public bucket), so image bytes never pass
// through it.
import { CRC32C, Storage, type File } from '@google-cloud/storage';
import { imageKey, isImageKey, thumbnailKey, type ImageStore, type PutImageInput, type StoredImageRef } from './types.ts';

export interface GcsImageStoreOptions {
  bucket: string;
  /** How long a link from linkFor stays valid. */
  signedUrlSeconds?: number;
  /** The bucket is readable by anyone: stable public URLs instead of signed ones. */
  publicBucket?: boolean;
  /** A ready client (tests point one at a fake server); otherwise the store makes one from the environment's credentials. */
  storage?: Storage;
  /** An emulator's URL, for a client the store makes. The client sends no credentials to a custom endpoint. */
  apiEndpoint?: string;
}

// A stalled upload ends and is retried rather than holding the job; a PNG takes well under a second.
const UPLOAD_TIMEOUT_MS = 60_000;
// A put that keeps finding another writer's object gives up instead of looping.
const PUT_ATTEMPTS = 3;

export function createGcsImageStore(options: GcsImageStoreOptions): ImageStore {
  const storage = options.storage ?? new Storage(options.apiEndpoint ? { apiEndpoint: options.apiEndpoint } : {});
  const bucket = storage.bucket(options.bucket);
  const signedUrlSeconds = options.signedUrlSeconds ?? 3600;
  const publicBucket = options.publicBucket ?? false;
  // storage.apiEndpoint is https://storage.googleapis.com unless an endpoint was given.
  const publicUrl = (key: string) => `${storage.apiEndpoint}/${options.bucket}/${key}`;
  const cacheControl = `${publicBucket ? 'public' : 'private'}, max-age=31536000, immutable`;

  return {
    kind: 'gcs',
    // Signed and public URLs both point at the client's endpoint.
    origin: new URL(storage.apiEndpoint).origin,

    async putImage({ generationId, index, png, seed }: PutImageInput): Promise<StoredImageRef> {
      const key = imageKey(generationId, index);
      if (!isImageKey(key)) throw new Error(`not an image key: ${JSON.stringify(key)}`);
      const file = bucket.file(key);
      const crc32c = crc32cOf(png);
      // Uploads are conditional (ifGenerationMatch): under the library's default retry strategy
      // only conditional uploads are retried. The first expects no object at all. A precondition failure means an object is there
      // already: the same bytes (a retry whose first response was lost, a redelivered job) count
      // as stored; other bytes come from an earlier attempt at this job that never completed it,
      // and are replaced on the condition that nobody else replaced them first.
      let expectedGeneration = 0;
      for (let attempt = 0; attempt < PUT_ATTEMPTS; attempt++) {
        try {
          await file.save(png, {
            // One request; a retry resends the whole image, far below the size where resumable uploads pay off.
            resumable: false,
            validation: 'crc32c',
            timeout: UPLOAD_TIMEOUT_MS,
            contentType: 'image/png',
            metadata: {
              cacheControl,
              metadata: { generation_id: generationId, seed: String(seed), index: String(index) },
            },
            preconditionOpts: { ifGenerationMatch: expectedGeneration },
          });
          return refFor(key);
        } catch (err) {
          if (statusOf(err) !== 412) throw err;
        }
        const existing = await currentObject(file);
        if (existing?.crc32c === crc32c) return refFor(key);
        expectedGeneration = existing ? existing.generation : 0;
      }
      throw new Error(`${key} kept being replaced by another writer (${PUT_ATTEMPTS} attempts)`);
    },

    async putThumbnail(key: string, webp: Buffer) {
      const thumbnail = thumbnailKey(key);
      if (!isImageKey(thumbnail)) throw new Error(`not an image key: ${JSON.stringify(key)}`);
      try {
        // Create-only (the gateway may create, not replace: infra/storage.ts), which also makes the
        // upload conditional and so retried by the client. Any object already there is another
        // gateway's copy of the same picture.
        await bucket.file(thumbnail).save(webp, {
          resumable: false,
          validation: 'crc32c',
          timeout: UPLOAD_TIMEOUT_MS,
          contentType: 'image/webp',
          metadata: { cacheControl },
          preconditionOpts: { ifGenerationMatch: 0 },
        });
      } catch (err) {
        if (statusOf(err) !== 412) throw err;
      }
    },

    async exists(key: string) {
      if (!isImageKey(key)) return false;
      const [exists] = await bucket.file(key).exists();
      return exists;
    },

    async linkFor(key: string) {
      if (!isImageKey(key)) return null;
      if (publicBucket) return publicUrl(key);
      const [url] = await bucket.file(key).getSignedUrl({
        version: 'v4',
        action: 'read',
        expires: Date.now() + signedUrlSeconds * 1000,
      });
      return url;
    },

    async read(key: string) {
      if (!isImageKey(key)) return null;
      try {
        const [bytes] = await bucket.file(key).download();
        return bytes;
      } catch (err) {
        if (statusOf(err) === 404) return null;
        throw err;
      }
    },

    async delete(keys: string[]) {
      // A generation has a handful of images: one request each, side by side.
      await Promise.all(keys.filter(isImageKey).map((key) => bucket.file(key).delete({ ignoreNotFound: true })));
    },
  };

  function refFor(key: string): StoredImageRef {
    return publicBucket ? { key, url: publicUrl(key) } : { key };
  }
}

async function currentObject(file: File): Promise<{ crc32c: string | undefined; generation: number } | null> {
  try {
    const [metadata] = await file.getMetadata();
    return { crc32c: metadata.crc32c, generation: Number(metadata.generation) };
  } catch (err) {
    if (statusOf(err) === 404) return null;
    throw err;
  }
}

function crc32cOf(bytes: Buffer) {
  const crc = new CRC32C();
  crc.update(bytes);
  return crc.toString();
}

// The client's ApiError carries the HTTP status as a numeric `code`.
const statusOf = (err: unknown) => (err as { code?: unknown } | null)?.code;
