// `npm run keys -- create --name NAME [--max-unfinished N]`, `… list`, `… revoke ID_OR_PREFIX`.
// Works on the same database the gateway uses (DATABASE_URL, or the embedded one under DATA_DIR).
// A new key is printed once; only its hash is stored.
import { parseArgs } from 'node:util';
import { ConfigError, parseConfig } from '../core/config.ts';
import { openDb } from '../store/db.ts';
import { migrate } from '../store/migrate.ts';
import { insertApiKey, listApiKeys, revokeApiKey } from '../store/sql/apiKeys.ts';
import { newApiKey } from './auth.ts';

const USAGE = `usage:
  npm run keys -- create --name NAME [--max-unfinished N]
  npm run keys -- list
  npm run keys -- revoke ID_OR_PREFIX`;

export async function runKeysCli(argv: string[], out: (line: string) => void, env = process.env): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { name: { type: 'string' }, 'max-unfinished': { type: 'string' } },
  });
  const [command, arg] = positionals;
  if (command !== 'create' && command !== 'list' && command !== 'revoke') {
    out(USAGE);
    return 2;
  }
  const config = parseConfig(env);
  const db = await openDb({
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    poolSize: 1,
    connectTimeoutMs: config.databaseConnectTimeoutMs,
    queryTimeoutMs: config.databaseQueryTimeoutMs,
  });
  try {
    await migrate(db);
    if (command === 'create') {
      const name = values.name?.trim();
      const max = values['max-unfinished'] === undefined ? config.defaultMaxUnfinished : Number(values['max-unfinished']);
      if (!name || name.length > 100) {
        out('--name is required (1 to 100 characters)');
        return 2;
      }
      if (!Number.isInteger(max) || max < 1 || max > 1_000_000) {
        out('--max-unfinished must be an integer from 1 to 1000000');
        return 2;
      }
      const k = newApiKey();
      const saved = await insertApiKey(db, { name, keyHash: k.hash, prefix: k.prefix, maxUnfinished: max });
      out(k.key);
      out(`created key ${saved.id} "${saved.name}" (max ${saved.maxUnfinished} unfinished); it is shown only this once`);
      return 0;
    }
    if (command === 'list') {
      for (const k of await listApiKeys(db)) {
        const state = k.revokedAt ? `revoked ${k.revokedAt.toISOString()}` : 'active';
        out(`${k.id}  ${k.prefix}…  ${k.name}  max_unfinished=${k.maxUnfinished}  ${state}`);
      }
      return 0;
    }
    if (!arg) {
      out(USAGE);
      return 2;
    }
    const revoked = await revokeApiKey(db, arg);
    out(revoked ? `revoked ${revoked.id} "${revoked.name}"` : `no active key matches ${arg}`);
    return revoked ? 0 : 1;
  } finally {
    await db.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    process.exitCode = await runKeysCli(process.argv.slice(2), (line) => process.stdout.write(`${line}\n`));
  } catch (err) {
    process.stderr.write(`keys: ${err instanceof ConfigError ? err.message : (err as Error).stack}\n`);
    process.exitCode = 2;
  }
}
