// Picks the image store from the configuration: GCS when GCS_BUCKET is set, else a folder under
// DATA_DIR. The gateway and the runner open the same store (each with its own permissions in GCS).
import path from 'node:path';
import { createGcsImageStore } from './gcs.ts';
import { createLocalImageStore } from './local.ts';
import type { ImageStore } from './types.ts';

export function openImageStore(config: { gcsBucket: string | undefined; gcsSignedUrlSeconds: number; gcsPublic: boolean; dataDir: string }): ImageStore {
  if (config.gcsBucket) {
    return createGcsImageStore({
      bucket: config.gcsBucket,
      signedUrlSeconds: config.gcsSignedUrlSeconds,
      publicBucket: config.gcsPublic,
    });
  }
  return createLocalImageStore(path.join(config.dataDir, 'images'));
}
