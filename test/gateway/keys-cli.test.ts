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
    assert.match(listed.lines[0]!, /level designers\s+max_unfinished=3\s+max_unfinished_cost=default\s+active/);
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

test('--url: keys of a gateway elsewhere through its admin API; changes apply at once, past the lookup cache', async () => {
  const ADMIN_TOKEN = 'admin-token-for-tests-0123456789';
  const t = await startTestGateway({ store: 'postgres', keys: [{ name: 'existing' }], env: { ADMIN_TOKEN, API_KEY_CACHE_MS: '600000' } });
  const run = async (env: Record<string, string>, ...args: string[]) => {
    const lines: string[] = [];
    const code = await runKeysCli([...args, '--url', t.url], (l) => lines.push(l), env);
    return { code, lines };
  };
  try {
    const created = await run({ ADMIN_TOKEN }, 'create', '--name', 'remote', '--max-unfinished', '7');
    assert.is(created.code, 0);
    const key = created.lines[0]!;
    assert.is((await t.call('POST', '/v1/generations', { key, body: { prompt: 'x' } })).status, 202);
    const listed = await run({ ADMIN_TOKEN }, 'list');
    assert.equal(listed.lines.map((l) => l.split(/\s+/)[2]), ['existing', 'remote']);
    assert.match(listed.lines[1]!, /max_unfinished=7\s+max_unfinished_cost=default\s+active/);

    assert.is((await run({ ADMIN_TOKEN }, 'revoke', key.slice(0, 12))).code, 0);
    assert.is((await t.call('GET', '/v1/generations', { key })).status, 401, 'revoked at once, although lookups are cached for 10 minutes');
    assert.is((await run({ ADMIN_TOKEN }, 'revoke', key.slice(0, 12))).code, 1, 'already revoked');

    const failure = (p: Promise<unknown>): Promise<string> => p.then(() => assert.unreachable('succeeded') as never, (err: Error) => err.message);
    assert.match(await failure(run({ ADMIN_TOKEN: 'wrong-admin-token-0123456789' }, 'list')), /answered 401 unauthorized/);
    assert.match(await failure(run({}, 'list')), /--url needs ADMIN_TOKEN/);
    const refused = await t.call('POST', '/admin/v1/keys', { body: { name: 'a\u0000b' }, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    assert.is(refused.status, 422);
    const unknown = await t.call('POST', `/admin/v1/keys/${encodeURIComponent('x\u0000')}/revoke`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    assert.is(unknown.status, 400);
  } finally {
    await t.stop();
  }
  const without = await startTestGateway({ store: 'postgres', keys: [{ name: 'k' }] });
  try {
    assert.is((await without.call('GET', '/admin/v1/keys')).status, 404, 'no ADMIN_TOKEN on a server database: no admin API');
  } finally {
    await without.stop();
  }
});

test.run();
