// Images in a local folder, for the embedded mode: <rootDir>/generated/{id}/{n}.png, thumbnails
// beside them. The gateway serves these bytes itself, so there are no links.
import { randomBytes } from 'node:crypto';
import { access, mkdir, open, readFile, rename, rm, rmdir } from 'node:fs/promises';
import path from 'node:path';
import { imageKey, isImageKey, thumbnailKey, type ImageStore, type PutImageInput, type StoredImageRef } from './types.ts';

export function createLocalImageStore(rootDir: string): ImageStore {
  const root = path.resolve(rootDir);
  const fileFor = (key: string) => path.join(root, ...key.split('/'));

  return {
    kind: 'local',

    async putImage({ generationId, index, png }: PutImageInput): Promise<StoredImageRef> {
      const key = imageKey(generationId, index);
      await put(key, png);
      return { key };
    },

    async putThumbnail(key: string, webp: Buffer) {
      await put(thumbnailKey(key), webp);
    },

    async linkFor() {
      return null;
    },

    async read(key: string) {
      if (!isImageKey(key)) return null;
      try {
        return await readFile(fileFor(key));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw err;
      }
    },

    async exists(key: string) {
      if (!isImageKey(key)) return false;
      try {
        await access(fileFor(key));
        return true;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
        throw err;
      }
    },

    async delete(keys: string[]) {
      const folders = new Set<string>();
      for (const key of keys.filter(isImageKey)) {
        const file = fileFor(key);
        await rm(file, { force: true });
        folders.add(path.dirname(file));
      }
      // The generation's folder goes too once empty, so the images folder does not fill with empty ones.
      for (const folder of folders) {
        try {
          await rmdir(folder);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code !== 'ENOENT' && code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
        }
      }
    },
  };

  async function put(key: string, bytes: Buffer) {
    if (!isImageKey(key)) throw new Error(`not an image key: ${JSON.stringify(key)}`);
    const file = fileFor(key);
    const folder = path.dirname(file);
    await mkdir(folder, { recursive: true });
    await writeAtomically(file, bytes);
    // A name is durable once the folder holding it is synced: the file's, and the folders above
    // it that the first put of a generation (or of all) created.
    for (const dir of [folder, path.dirname(folder), root]) await syncFolder(dir);
  }
}

// Readers see the old file or the whole new one, never a part: the bytes go to a temporary file in
// the same folder (so the rename stays on one file system), reach the disk, then replace the
// name in one step. A repeated put of the same image therefore replaces it with identical bytes.
// The temporary name never has the shape of an image key, so read() cannot return one.
async function writeAtomically(file: string, bytes: Buffer) {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const handle = await open(tmp, 'wx');
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

async function syncFolder(dir: string) {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
