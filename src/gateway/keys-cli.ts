// `npm run keys -- create --name NAME [--max-unfinished N]`, `… list`, `… revoke ID_OR_PREFIX`.
// Works on the gateway's database (DATABASE_URL, or the embedded one under DATA_DIR). While the
// embedded product runs, its database is that process's alone: the CLI then asks it through its
// admin API (address and token from DATA_DIR's lock file), so a key works at once. `--url` manages
// the keys of a gateway elsewhere through its admin API (ADMIN_TOKEN). A new key is printed once;
// only its hash is stored.
import { parseArgs } from 'node:util';
import { ConfigError } from '../core/config.ts';
import { DataDirInUseError, lockHolder } from '../store/data-dir-lock.ts';
import { openDb } from '../store/openDb.ts';
import { migrate } from '../store/migrate.ts';
import { databaseOptions, parseConfig, type Config } from './config.ts';
import { createKey, listKeys, newKeySchema, revokeKey, type CreatedKey, type KeyView, type NewKey } from './keys.ts';

const USAGE = `usage:
  npm run keys -- create --name NAME [--max-unfinished N] [--max-unfinished-cost N] [--url GATEWAY_URL]
  npm run keys -- list [--url GATEWAY_URL]
  npm run keys -- revoke ID_OR_PREFIX [--url GATEWAY_URL]
--url: a gateway's admin API (needs ADMIN_TOKEN); without it, the configured database, or the
embedded product running on DATA_DIR.`;

interface KeyAdmin {
  create(request: NewKey): Promise<CreatedKey>;
  list(): Promise<KeyView[]>;
  revoke(idOrPrefix: string): Promise<KeyView | null>;
  close(): Promise<void>;
}

/** The admin API of a running gateway. */
function httpKeyAdmin(base: string, token: string): KeyAdmin {
  const call = async (method: string, route: string, body?: unknown): Promise<Response> => {
    let res: Response;
    try {
      res = await fetch(`${base.replace(/\/+$/, '')}/admin/v1${route}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(10_000),
      });
    } catch (err) {
      throw new Error(`the gateway at ${base} did not answer: ${(err as Error).message}`);
    }
    if (res.ok || res.status === 404) return res;
    const problem = (await res.json().catch(() => ({}))) as { code?: string; detail?: string };
    throw new Error(`the gateway at ${base} answered ${res.status} ${problem.code ?? ''}: ${problem.detail ?? res.statusText}`);
  };
  return {
    create: async (request) => (await (await call('POST', '/keys', request)).json()) as CreatedKey,
    list: async () => ((await (await call('GET', '/keys')).json()) as { data: KeyView[] }).data,
    async revoke(idOrPrefix) {
      const res = await call('POST', `/keys/${encodeURIComponent(idOrPrefix)}/revoke`);
      return res.status === 404 ? null : ((await res.json()) as KeyView);
    },
    close: async () => {},
  };
}

async function openKeyAdmin(config: Config, url: string | undefined): Promise<KeyAdmin> {
  if (url) {
    if (!config.adminToken) throw new ConfigError('--url needs ADMIN_TOKEN, the admin token of that gateway');
    return httpKeyAdmin(url, config.adminToken);
  }
  if (!config.databaseUrl) {
    const holder = await lockHolder(config.dataDir);
    if (holder) {
      if (typeof holder.url === 'string' && typeof holder.admin_token === 'string') return httpKeyAdmin(holder.url, holder.admin_token);
      throw new DataDirInUseError(config.dataDir, holder);
    }
  }
  const db = await openDb({ ...databaseOptions(config), poolSize: 1 });
  try {
    await migrate(db);
  } catch (err) {
    await db.close();
    throw err;
  }
  return {
    create: (request) => createKey(db, request, config.defaultMaxUnfinished),
    list: () => listKeys(db),
    revoke: (idOrPrefix) => revokeKey(db, idOrPrefix),
    close: () => db.close(),
  };
}

export async function runKeysCli(argv: string[], out: (line: string) => void, env = process.env): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { name: { type: 'string' }, 'max-unfinished': { type: 'string' }, 'max-unfinished-cost': { type: 'string' }, url: { type: 'string' } },
  });
  const [command, arg] = positionals;
  if ((command !== 'create' && command !== 'list' && command !== 'revoke') || (command === 'revoke' && !arg)) {
    out(USAGE);
    return 2;
  }
  let request: NewKey | undefined;
  if (command === 'create') {
    const max = values['max-unfinished'];
    const maxCost = values['max-unfinished-cost'];
    const parsed = newKeySchema.safeParse({
      name: values.name ?? '',
      ...(max === undefined ? {} : { max_unfinished: Number(max) }),
      ...(maxCost === undefined ? {} : { max_unfinished_cost: Number(maxCost) }),
    });
    if (!parsed.success) {
      const flags: Record<string, string> = {
        name: '--name is required (1 to 100 characters)',
        max_unfinished: '--max-unfinished must be an integer from 1 to 1000000',
        max_unfinished_cost: '--max-unfinished-cost must be an integer from 1 to 1000000000',
      };
      for (const issue of parsed.error.issues) out(flags[String(issue.path[0])] ?? issue.message);
      return 2;
    }
    request = parsed.data;
  }
  const admin = await openKeyAdmin(parseConfig(env), values.url);
  try {
    if (request) {
      const k = await admin.create(request);
      out(k.key);
      const budget = k.max_unfinished_cost === null ? 'the default compute budget' : `a compute budget of ${k.max_unfinished_cost}`;
      out(`created key ${k.id} "${k.name}" (max ${k.max_unfinished} unfinished, ${budget}); it is shown only this once`);
      if (k.adopted_generations > 0) out(`${k.adopted_generations} generation(s) made without a key now belong to it`);
      return 0;
    }
    if (command === 'list') {
      for (const k of await admin.list()) {
        const state = k.revoked_at ? `revoked ${k.revoked_at}` : 'active';
        out(`${k.id}  ${k.prefix}…  ${k.name}  max_unfinished=${k.max_unfinished}  max_unfinished_cost=${k.max_unfinished_cost ?? 'default'}  ${state}`);
      }
      return 0;
    }
    const revoked = await admin.revoke(arg!);
    out(revoked ? `revoked ${revoked.id} "${revoked.name}"` : `no active key matches ${arg}`);
    return revoked ? 0 : 1;
  } finally {
    await admin.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    process.exitCode = await runKeysCli(process.argv.slice(2), (line) => process.stdout.write(`${line}\n`));
  } catch (err) {
    process.stderr.write(`keys: ${(err as Error).message}\n`);
    process.exitCode = 2;
  }
}
