// The model hash (a generation's `ran.model_hash`, the infotext's "Model hash"): sha256 over the
// ONNX files and their external weights, with a digest cache so that a start does not read 1.7 to
// 4 GB of unchanged weights again (docs/architecture.md, decision 20). The cache holds the digest
// with each hashed file's path, size and modification time (nanoseconds); when all of them are as
// recorded the digest is reused, and when any differs the whole folder is hashed again. The hash
// itself is the same with or without the cache.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';

/** The subfolders whose files make the hash (their .json configs are not part of it). */
const HASHED_FOLDERS = ['text_encoder', 'unet', 'vae_decoder'];
/** The cache's default place: in the model folder, beside (not inside) what it hashes. */
export const HASH_CACHE_FILE = '.itemgen-hash.json';
const CACHE_VERSION = 1;

export interface ModelHashOptions {
  /** Where the digest is kept between starts (default `<dir>/.itemgen-hash.json`); null: not kept. */
  cacheFile?: string | null;
  /** Reads one file's bytes; tests count reads through it. */
  read?: (file: string) => AsyncIterable<Uint8Array>;
}

export interface ModelHash {
  /** sha256, hex. */
  hash: string;
  /** The digest came from the cache: no weights were read. */
  cached: boolean;
  /** Why the digest could not be kept (e.g. a read-only folder); absent when it was kept or needed no keeping. */
  notStored?: string;
}

/** One hashed file as the cache records it: relative path, size, mtime in ns (as a string; it exceeds 2^53). */
type FileStamp = [file: string, size: number, mtimeNs: string];

interface CacheContents {
  version: number;
  files: FileStamp[];
  sha256: string;
}

const readStream = (file: string): AsyncIterable<Uint8Array> => fs.createReadStream(file, { highWaterMark: 1024 * 1024 });

/** The folder's model hash, from the cache when every hashed file is as the cache recorded it. */
export async function hashModelFiles(dir: string, options: ModelHashOptions = {}): Promise<ModelHash> {
  const cacheFile = options.cacheFile === undefined ? path.join(dir, HASH_CACHE_FILE) : options.cacheFile;
  const stamps = await fileStamps(dir);
  const cache = cacheFile === null ? null : await readCache(cacheFile);
  if (cache && sameStamps(cache.files, stamps)) return { hash: cache.sha256, cached: true };

  const hash = createHash('sha256');
  const read = options.read ?? readStream;
  for (const [file] of stamps) {
    hash.update(`${file}\0`);
    for await (const chunk of read(path.join(dir, file))) hash.update(chunk);
  }
  const sha256 = hash.digest('hex');
  if (cacheFile === null) return { hash: sha256, cached: false };
  // A file changed while it was read would be recorded with the digest of other bytes: stamps taken
  // again after reading must match the ones taken before.
  if (!sameStamps(stamps, await fileStamps(dir))) return { hash: sha256, cached: false, notStored: 'files changed while hashing' };
  const notStored = await writeCache(cacheFile, { version: CACHE_VERSION, files: stamps, sha256 });
  return notStored === undefined ? { hash: sha256, cached: false } : { hash: sha256, cached: false, notStored };
}

/** The hashed files in hashing order (folder, then name), each with its size and mtime. */
async function fileStamps(dir: string): Promise<FileStamp[]> {
  const stamps: FileStamp[] = [];
  for (const sub of HASHED_FOLDERS) {
    const names = (await fsp.readdir(path.join(dir, sub))).filter((n) => !n.endsWith('.json')).sort();
    for (const name of names) {
      const stat = await fsp.stat(path.join(dir, sub, name), { bigint: true });
      stamps.push([`${sub}/${name}`, Number(stat.size), String(stat.mtimeNs)]);
    }
  }
  return stamps;
}

const sameStamps = (a: FileStamp[], b: FileStamp[]) =>
  a.length === b.length && a.every(([file, size, mtime], i) => file === b[i]![0] && size === b[i]![1] && mtime === b[i]![2]);

/** The cache's contents, or null when it is missing, unreadable or not ours: it is only ever a shortcut. */
async function readCache(file: string): Promise<CacheContents | null> {
  try {
    const value = JSON.parse(await fsp.readFile(file, 'utf8')) as Partial<CacheContents>;
    const valid =
      value.version === CACHE_VERSION &&
      typeof value.sha256 === 'string' &&
      /^[0-9a-f]{64}$/.test(value.sha256) &&
      Array.isArray(value.files) &&
      value.files.every((s) => Array.isArray(s) && typeof s[0] === 'string' && typeof s[1] === 'number' && typeof s[2] === 'string');
    return valid ? (value as CacheContents) : null;
  } catch {
    return null;
  }
}

/** Writes the cache whole or not at all (a temporary file renamed over it); resolves to why not, if it could not. */
async function writeCache(file: string, contents: CacheContents): Promise<string | undefined> {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    await fsp.writeFile(tmp, `${JSON.stringify(contents)}\n`);
    await fsp.rename(tmp, file);
    return undefined;
  } catch (err) {
    await fsp.rm(tmp, { force: true }).catch(() => {});
    return (err as Error).message;
  }
}
