// The embedded product as `npm start` runs it, as processes: stopped with SIGINT while jobs run
// and restarted, it finishes every one; a second process on its DATA_DIR is refused by name;
// `npm run keys` works while it runs, the new key at once, and it ends the open mode with the
// history made in it kept for that key.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { runKeysCli } from '../src/gateway/keys-cli.ts';
import { readSse } from './helpers/sse.ts';
import { submit } from './helpers/submit.ts';

interface ProductProcess {
  child: ChildProcess;
  url: Promise<string>;
  exited: Promise<number | null>;
  stderr: () => string;
  logged(msg: string): Promise<Record<string, unknown>>;
  /** The first line on stdout (what a person starting it reads), once it is written. */
  said: Promise<string>;
}

function startProductProcess(dataDir: string): ProductProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: path.resolve(import.meta.dirname, '..'),
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: os.tmpdir(),
      PORT: '0',
      DATA_DIR: dataDir,
      LOG_LEVEL: 'info',
      EXECUTION_PROVIDER: 'cpu',
      // Stopped, the runner hands its job back at once instead of finishing it.
      RUNNER_GRACE_SECONDS: '0',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  const said = new Promise<string>((resolve) =>
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      if (stdout.includes('\n')) resolve(stdout.slice(0, stdout.indexOf('\n')));
    }),
  );
  let stderr = '';
  const entries: Record<string, unknown>[] = [];
  const waiters: { msg: string; resolve: (e: Record<string, unknown>) => void }[] = [];
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
    for (const line of chunk.split('\n')) {
      if (!line.startsWith('{')) continue;
      const entry = JSON.parse(line) as Record<string, unknown>;
      entries.push(entry);
      for (const w of waiters.filter((w) => w.msg === entry.message)) w.resolve(entry);
    }
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const logged = (msg: string) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const found = entries.find((e) => e.message === msg);
      if (found) return resolve(found);
      waiters.push({ msg, resolve });
      void exited.then((code) => reject(new Error(`exited (${code}) before logging "${msg}":\n${stderr}`)));
    });
  const url = logged('gateway listening').then((e) => String(e.url));
  url.catch(() => {}); // a process refused at start never listens; the test that expects that awaits exited
  return { child, exited, stderr: () => stderr, logged, url, said };
}

async function stop(p: ProductProcess) {
  if (p.child.exitCode === null) p.child.kill('SIGINT');
  return p.exited;
}

/** Follows a generation's events until it ends; its last state. */
async function finished(url: string, id: string, key?: string): Promise<any> {
  let last: any;
  const res = await fetch(`${url}/v1/generations/${id}/events`, key ? { headers: { authorization: `Bearer ${key}` } } : {});
  for await (const e of readSse(res)) last = JSON.parse(e.data);
  return last;
}

const it = suite<{ dir: string; running: ProductProcess[] }>('the embedded product as processes');
it.before(async (ctx) => {
  ctx.dir = await fs.mkdtemp(path.join(os.tmpdir(), 'itemgen-lifecycle-'));
  ctx.running = [];
});
it.after(async ({ dir, running }) => {
  for (const p of running) await stop(p);
  await fs.rm(dir, { recursive: true, force: true });
});

it('stopped with SIGINT while one job runs and another waits, restarted: both complete', async (ctx) => {
  const first = startProductProcess(ctx.dir);
  ctx.running.push(first);
  const url = await first.url;
  const long = await submit(url, { prompt: 'a long one', width: 1024, height: 1024, num_inference_steps: 150 });
  const queued = await submit(url, { prompt: 'a queued one', width: 256, height: 256, num_inference_steps: 2 });
  for await (const e of readSse(await fetch(`${url}/v1/generations/${long}/events`))) {
    const g = JSON.parse(e.data);
    if (g.status === 'processing' && g.progress.step >= 1) break;
  }
  assert.is(await stop(first), 0);

  const second = startProductProcess(ctx.dir);
  ctx.running.push(second);
  const again = await second.url;
  assert.is((await second.logged('unfinished generations of the previous start queued again')).count, 2);
  const [a, b] = await Promise.all([finished(again, long), finished(again, queued)]);
  assert.equal([a.status, b.status], ['completed', 'completed']);
});

it('npm start says where the web app is, and the page is served there', async (ctx) => {
  const running = ctx.running.at(-1)!;
  const url = await running.url;
  assert.is(await running.said, `itemgen is running: open ${url}/ in a browser (the API is under ${url}/v1, its reference at ${url}/docs)`);
  const page = await fetch(`${url}/`);
  assert.is(page.status, 200);
  assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
  assert.match(await page.text(), /<script type="module" src="\/assets\/main-/);
});

it('a second process on the same DATA_DIR is refused, naming the one that runs', async (ctx) => {
  const running = ctx.running.at(-1)!;
  const second = startProductProcess(ctx.dir);
  assert.is(await second.exited, 2);
  assert.match(second.stderr(), new RegExp(`DATA_DIR .* is in use by another itemgen process \\(pid ${running.child.pid} on .*, serving ${await running.url}\\)`));
});

it('npm run keys while it runs: through the running gateway; the key works at once, ends the open mode, and owns the open history', async (ctx) => {
  const running = ctx.running.at(-1)!;
  const url = await running.url;
  const opened = await submit(url, { prompt: 'made before any key', width: 256, height: 256, num_inference_steps: 2 });
  const lines: string[] = [];
  assert.is(await runKeysCli(['create', '--name', 'designers'], (l) => lines.push(l), { DATA_DIR: ctx.dir }), 0);
  const key = lines[0]!;
  assert.match(key, /^igk_/);
  assert.match(lines[2] ?? '', /generation\(s\) made without a key now belong to it/);

  const anonymous = await fetch(`${url}/v1/generations`);
  assert.is(anonymous.status, 401, 'open mode ended with the first key');
  assert.is((await fetch(`${url}/v1/generations/${opened}`, { headers: { authorization: `Bearer ${key}` } })).status, 200, 'the open history is the key\'s');
  const made = await submit(url, { prompt: 'with the new key', width: 256, height: 256, num_inference_steps: 2 }, key);
  assert.is((await finished(url, made, key)).status, 'completed');
  const listed: string[] = [];
  await runKeysCli(['list'], (l) => listed.push(l), { DATA_DIR: ctx.dir });
  assert.match(listed.join('\n'), /designers\s+max_unfinished=100\s+max_unfinished_cost=default\s+active/);

  // After a restart the key is still there (the running process wrote it, no one else).
  assert.is(await stop(running), 0);
  const restarted = startProductProcess(ctx.dir);
  ctx.running.push(restarted);
  const next = await restarted.url;
  assert.is((await fetch(`${next}/v1/generations`)).status, 401);
  assert.is((await fetch(`${next}/v1/generations`, { headers: { authorization: `Bearer ${key}` } })).status, 200);
});

it.run();
