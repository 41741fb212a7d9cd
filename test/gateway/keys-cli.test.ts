// npm run keys: create prints a key once, list shows it without the secret, revoke stops it.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runKeysCli } from '../../src/gateway/keys-cli.ts';
import { startTestGateway } from '../helpers/gateway.ts';

test('create, list, revoke on the embedded database; the gateway honors them', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'itemgen-keys-'));
  const env = { DATA_DIR: dir };
  const run = async (...args: string[]) => {
    const lines: string[] = [];
    const code = await runKeysCli(args, (l) => lines.push(l), env);
    return { code, lines };
  };
  try {
    const created = await run('create', '--name', 'level designers', '--max-unfinished', '3');
    assert.is(created.code, 0);
    const key = created.lines[0]!;
    assert.match(key, /^igk_[A-Za-z0-9_-]{43}$/);

    const listed = await run('list');
    assert.is(listed.code, 0);
    assert.is(listed.lines.length, 1);
    assert.match(listed.lines[0]!, /level designers\s+max_unfinished=3\s+active/);
    assert.not.match(listed.lines[0]!, key, 'the secret is never shown again');

    assert.is((await run('create')).code, 2, '--name is required');
    assert.is((await run('create', '--name', 'x', '--max-unfinished', '0')).code, 2);
    assert.is((await run('frobnicate')).code, 2);

    const t = await startTestGateway({ store: 'pglite', env: { DATA_DIR: dir } });
    try {
      assert.is((await t.call('POST', '/v1/generations', { key, body: { prompt: 'x' } })).status, 202);
      assert.is((await t.call('POST', '/v1/generations', { body: { prompt: 'x' } })).status, 401);
    } finally {
      await t.stop();
    }
    const id = listed.lines[0]!.split(/\s+/)[0]!;
    const revoked = await run('revoke', id);
    assert.is(revoked.code, 0);
    assert.match((await run('list')).lines[0]!, /revoked/);
    assert.is((await run('revoke', id)).code, 1, 'already revoked');

    const again = await startTestGateway({ store: 'pglite', env: { DATA_DIR: dir } });
    try {
      assert.is((await again.call('POST', '/v1/generations', { key, body: { prompt: 'x' } })).status, 401);
    } finally {
      await again.stop();
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test.run();
