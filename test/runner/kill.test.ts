// A runner killed with SIGKILL mid-job loses nothing: RabbitMQ redelivers the unacked messages (the
// job generating and, pipelined, the next one claimed and waiting for the model), each job is
// claimed again once the dead runner's lease expires, and each completes exactly once.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeTinyModel } from '../../src/runner/pipeline/tiny-model.ts';
import { RUNNER_TOKEN, startTestGateway } from '../helpers/gateway.ts';
import { AMQP_URL } from '../helpers/services.ts';
import { readSse } from '../helpers/sse.ts';

function startRunnerProcess(env: Record<string, string>): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', 'src/runner/main.ts'], {
    cwd: path.resolve(import.meta.dirname, '..', '..'),
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: os.tmpdir(), ...env },
    stdio: ['ignore', 'ignore', 'ignore'],
  });
}

const exited = (child: ChildProcess) =>
  new Promise<NodeJS.Signals | number | null>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));

test('SIGKILL mid-generation with the next job claimed and waiting: both redelivered, re-claimed after the lease, completed once', async () => {
  const t = await startTestGateway({ store: 'postgres', broker: 'rabbitmq', env: { LEASE_SECONDS: '5' } });
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'itemgen-kill-'));
  const children: ChildProcess[] = [];
  try {
    await new Promise<void>((resolve) => t.gw.queue.onConnected(resolve));
    await writeTinyModel(path.join(dir, 'model'), { seed: 3 });
    const env = {
      GATEWAY_URL: t.url,
      RUNNER_TOKEN,
      AMQP_URL,
      AMQP_PREFIX: t.prefix,
      MODEL_DIR: path.join(dir, 'model'),
      DATA_DIR: path.join(dir, 'data'),
      EXECUTION_PROVIDER: 'cpu',
      RUNNER_HEALTH_PORT: '0',
      RUNNER_PROGRESS_INTERVAL_MS: '0',
      LOG_LEVEL: 'silent',
      RUNNER_PREFETCH: '2',
    };
    const first = startRunnerProcess(env);
    children.push(first);
    const firstExit = exited(first);

    const res = await t.call('POST', '/v1/generations', {
      body: { prompt: 'a cursed blade', num_inference_steps: 150, width: 1024, height: 1024, seed: 11 },
    });
    const { id } = (await res.json()) as any;
    const events = readSse(await t.call('GET', `/v1/generations/${id}/events`));
    // Kill at the first reported step, long before the 150th, once a second job is claimed and waits behind it.
    for await (const e of events) {
      const g = JSON.parse(e.data);
      if (g.status === 'processing' && g.progress.step >= 1) break;
      assert.is.not(g.status, 'completed', 'the job finished before it could be killed');
    }
    const next = await t.call('POST', '/v1/generations', { body: { prompt: 'a second blade', num_inference_steps: 4, width: 256, height: 256, seed: 12 } });
    const waiting = ((await next.json()) as any).id as string;
    for await (const e of readSse(await t.call('GET', `/v1/generations/${waiting}/events`))) {
      const g = JSON.parse(e.data);
      if (g.status === 'processing') break;
      assert.is(g.status, 'pending');
    }
    first.kill('SIGKILL');
    assert.is(await firstExit, 'SIGKILL');

    const second = startRunnerProcess(env);
    children.push(second);
    for (const job of [id, waiting]) {
      let last: any;
      for await (const e of readSse(await t.call('GET', `/v1/generations/${job}/events`))) last = JSON.parse(e.data);
      assert.is(last.status, 'completed');
      const row = (await t.gw.db.query('SELECT attempts, images FROM generations WHERE id = $1', [job]))[0]!;
      assert.is(Number(row.attempts), 2, 'claimed by the dead runner, then once more');
      assert.equal((row.images as { key: string }[]).map((i) => i.key), [`generated/${job}/0.png`]);
      await fs.access(path.join(dir, 'data', 'images', 'generated', job, '0.png'));
    }
  } finally {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await t.stop();
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test.run();
