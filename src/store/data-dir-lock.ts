// One process per embedded database: PGlite (a PostgreSQL compiled to WASM) in two processes on
// one folder means two databases writing the same files, so whoever opens it holds a lock file in
// DATA_DIR first. As PostgreSQL's own postmaster.pid: the file names its holder, and a holder that
// no longer runs (checked by pid, and on Linux by the process's start time and the boot, so a
// reused pid is not mistaken for it) leaves a stale file the next process takes over. The holder
// can add to the file what others need to reach it (the gateway: its URL and admin token; the file
// is readable by its owner only).
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ConfigError } from '../core/config.ts';

export const LOCK_FILE = 'itemgen.lock';

/** Lock files this process holds: a file naming our pid but not here is a previous process's (a container's pid 1 restarted). */
const held = new Set<string>();

export interface LockHolder {
  pid: number;
  hostname: string;
  started_at: string;
  /** Linux: the boot and the process's start (clock ticks since boot), to tell a reused pid apart. */
  boot_id?: string;
  start_ticks?: string;
  /** Whatever the holder added (the gateway's url and admin_token). */
  [extra: string]: unknown;
}

export interface DataDirLock {
  readonly file: string;
  /** Adds fields to what the lock file says about its holder. */
  announce(extra: Record<string, unknown>): Promise<void>;
  release(): Promise<void>;
}

/** Refusal to open a DATA_DIR another process holds; reported like a configuration error (exit 2, no stack). */
export class DataDirInUseError extends ConfigError {
  override name = 'DataDirInUseError';
  constructor(
    readonly dir: string,
    readonly holder: LockHolder,
  ) {
    const serving = typeof holder.url === 'string' ? `, serving ${holder.url}` : '';
    super(
      `DATA_DIR ${dir} is in use by another itemgen process (pid ${holder.pid} on ${holder.hostname}, started ${holder.started_at}${serving}). ` +
        'Stop it first, or use another DATA_DIR; `npm run keys` works while it runs.' +
        (holder.hostname === os.hostname() ? '' : ` If that host's process is gone, delete ${path.join(dir, LOCK_FILE)}.`),
    );
  }
}

async function readText(file: string): Promise<string | null> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch {
    return null;
  }
}

async function bootId(): Promise<string | undefined> {
  return (await readText('/proc/sys/kernel/random/boot_id'))?.trim() || undefined;
}

/** Field 22 of /proc/<pid>/stat (after the parenthesized name, which may hold spaces). */
async function startTicks(pid: number): Promise<string | undefined> {
  const stat = await readText(`/proc/${pid}/stat`);
  return stat?.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
}

async function me(): Promise<LockHolder> {
  const [boot, ticks] = await Promise.all([bootId(), startTicks(process.pid)]);
  return {
    pid: process.pid,
    hostname: os.hostname(),
    started_at: new Date().toISOString(),
    ...(boot ? { boot_id: boot } : {}),
    ...(ticks ? { start_ticks: ticks } : {}),
  };
}

/** Whether the process the lock file names may still run (another host's cannot be checked: assume so). */
async function runs(holder: LockHolder, file: string): Promise<boolean> {
  if (holder.hostname !== os.hostname()) return true;
  if (holder.pid === process.pid) return held.has(file);
  try {
    process.kill(holder.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  if (holder.boot_id && holder.boot_id !== (await bootId())) return false;
  if (holder.start_ticks) {
    const ticks = await startTicks(holder.pid);
    if (ticks !== undefined && ticks !== holder.start_ticks) return false;
  }
  return true;
}

function parse(text: string | null): LockHolder | null {
  try {
    const value = JSON.parse(text ?? '') as LockHolder;
    return typeof value.pid === 'number' && typeof value.hostname === 'string' ? value : null;
  } catch {
    return null;
  }
}

/** Writes `holder` to a new file beside `file` and returns its name (to link or rename into place). */
async function writeBeside(file: string, holder: LockHolder): Promise<string> {
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  await fs.writeFile(tmp, `${JSON.stringify(holder)}\n`, { mode: 0o600, flag: 'wx' });
  return tmp;
}

/** The live holder of DATA_DIR's lock, or null when nobody holds it (or only a stale file is left). */
export async function lockHolder(dir: string): Promise<LockHolder | null> {
  const file = path.join(dir, LOCK_FILE);
  const holder = parse(await readText(file));
  return holder && (await runs(holder, file)) ? holder : null;
}

/** Takes DATA_DIR's lock, or throws DataDirInUseError naming the process that holds it. */
export async function lockDataDir(dir: string): Promise<DataDirLock> {
  await fs.mkdir(dir, { recursive: true });
  const file = path.join(dir, LOCK_FILE);
  let holder = await me();
  for (let tries = 0; ; tries++) {
    const tmp = await writeBeside(file, holder);
    try {
      // link() creates the name only if it does not exist: taking the lock and writing it are one step.
      await fs.link(tmp, file);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || tries >= 3) throw err;
    } finally {
      await fs.rm(tmp, { force: true });
    }
    const current = parse(await readText(file));
    // The file appears whole (link) or not at all: an unreadable one is damaged, as stale as a dead holder's.
    if (current && (await runs(current, file))) throw new DataDirInUseError(dir, current);
    await fs.rm(file, { force: true });
  }
  held.add(file);
  let released = false;
  return {
    file,
    async announce(extra) {
      holder = { ...holder, ...extra };
      await fs.rename(await writeBeside(file, holder), file);
    },
    async release() {
      if (released) return;
      released = true;
      held.delete(file);
      // Only our own file: after a takeover (we were thought gone) it is another's.
      if (parse(await readText(file))?.pid === process.pid) await fs.rm(file, { force: true });
    },
  };
}
