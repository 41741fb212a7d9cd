// DATA_DIR's lock: one holder at a time, named when refused; a holder that no longer runs (dead
// pid, a pid reused by another process, our own pid from a previous start) is taken over.
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { DataDirInUseError, LOCK_FILE, lockDataDir, lockHolder } from '../../src/store/data-dir-lock.ts';

const it = suite<{ dir: string }>('DATA_DIR lock');
it.before.each(async (ctx) => {
  ctx.dir = await fs.mkdtemp(path.join(os.tmpdir(), 'itemgen-lock-'));
});
it.after.each(({ dir }) => fs.rm(dir, { recursive: true, force: true }));

const writeHolder = (dir: string, holder: Record<string, unknown>) =>
  fs.writeFile(path.join(dir, LOCK_FILE), JSON.stringify({ hostname: os.hostname(), started_at: '2026-01-01T00:00:00.000Z', ...holder }));

/** A process that runs until killed, and its pid. */
function sleeper() {
  const child = spawn('sleep', ['600'], { stdio: 'ignore' });
  return { pid: child.pid!, stop: () => new Promise((resolve) => (child.once('exit', resolve), child.kill('SIGKILL'))) };
}

it('one holder at a time: the second is refused with the holder named, and may lock once it is released', async ({ dir }) => {
  const lock = await lockDataDir(dir);
  await lock.announce({ url: 'http://127.0.0.1:9999', admin_token: 'secret-admin-token' });
  const stat = await fs.stat(lock.file);
  assert.is(stat.mode & 0o777, 0o600, 'only its owner reads the admin token');
  try {
    await lockDataDir(dir);
    assert.unreachable('locked twice');
  } catch (err) {
    assert.instance(err, DataDirInUseError);
    assert.match((err as Error).message, new RegExp(`in use by another itemgen process \\(pid ${process.pid} on ${os.hostname()}, started .*, serving http://127\\.0\\.0\\.1:9999\\)`));
  }
  assert.is((await lockHolder(dir))?.admin_token, 'secret-admin-token');
  await lock.release();
  assert.is(await lockHolder(dir), null);
  const again = await lockDataDir(dir);
  assert.is(JSON.parse(await fs.readFile(again.file, 'utf8')).pid, process.pid);
  await again.release();
});

it('a stale lock is taken over: a pid that is gone, our own pid from a previous start, a reused pid, a damaged file', async ({ dir }) => {
  const gone = spawn('true');
  await new Promise((resolve) => gone.once('exit', resolve));
  const live = sleeper();
  try {
    const stales: Record<string, unknown>[] = [
      { pid: gone.pid },
      { pid: process.pid },
      // Alive, but not the process that wrote the file: it started at another time.
      { pid: live.pid, start_ticks: '1' },
    ];
    for (const holder of stales) {
      await writeHolder(dir, holder);
      assert.is(await lockHolder(dir), null, JSON.stringify(holder));
      const lock = await lockDataDir(dir);
      assert.is(JSON.parse(await fs.readFile(lock.file, 'utf8')).pid, process.pid);
      await lock.release();
    }
    await fs.writeFile(path.join(dir, LOCK_FILE), '{"pid": 12');
    await (await lockDataDir(dir)).release();
  } finally {
    await live.stop();
  }
});

it('a live holder is refused: another process here, or any process of another host', async ({ dir }) => {
  const live = sleeper();
  try {
    const stat = await fs.readFile(`/proc/${live.pid}/stat`, 'utf8').catch(() => null);
    const ticks = stat?.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    await writeHolder(dir, { pid: live.pid, ...(ticks ? { start_ticks: ticks } : {}) });
    const refusal = (p: Promise<unknown>): Promise<Error> => p.then(() => assert.unreachable('locked') as never, (err: Error) => err);
    const here = await refusal(lockDataDir(dir));
    assert.instance(here, DataDirInUseError);
    assert.match(here.message, `pid ${live.pid}`);
    await writeHolder(dir, { pid: 1, hostname: 'another-host' });
    const there = await refusal(lockDataDir(dir));
    assert.instance(there, DataDirInUseError);
    assert.match(there.message, `If that host's process is gone, delete ${path.join(dir, LOCK_FILE)}`);
  } finally {
    await live.stop();
  }
});

it('release leaves a lock that another process took over alone', async ({ dir }) => {
  const lock = await lockDataDir(dir);
  await writeHolder(dir, { pid: 424242, note: 'took over' });
  await lock.release();
  assert.is(JSON.parse(await fs.readFile(path.join(dir, LOCK_FILE), 'utf8')).note, 'took over');
});

it.run();
