// Statements only tests run: the product never needs to count its outbox, so they stay out of src/store.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { migrate } from '../../src/store/migrate.ts';
import { openDb } from '../../src/store/openDb.ts';
import type { Db, Queryable } from '../../src/store/types.ts';
import { DATABASE_URL, uniqueName } from './services.ts';

/** Outbox rows left, whatever their lease: 0 once every message is confirmed. */
export async function countOutbox(db: Queryable): Promise<number> {
  const rows = await db.query('SELECT count(*) AS n FROM dispatch_outbox');
  return Number(rows[0]?.n ?? 0);
}

/**
 * A migrated store on `backend`: a schema of its own on the test PostgreSQL, or a PGlite data
 * folder of its own; `cleanup` drops it.
 */
export async function openTestStore(backend: 'postgres' | 'pglite', schemaPrefix: string, poolSize: number): Promise<{ db: Db; cleanup: () => Promise<void> }> {
  let db: Db;
  let cleanup: () => Promise<void>;
  if (backend === 'postgres') {
    const schema = uniqueName(schemaPrefix);
    db = await openDb({ databaseUrl: DATABASE_URL, dataDir: '', poolSize, schema });
    cleanup = async () => {
      const sql = postgres(DATABASE_URL, { max: 1, onnotice: () => {} });
      await sql.unsafe(`DROP SCHEMA "${schema}" CASCADE`);
      await sql.end();
    };
  } else {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'itemgen-pglite-'));
    db = await openDb({ databaseUrl: undefined, dataDir: dir, poolSize: 1 });
    cleanup = () => fs.rm(dir, { recursive: true, force: true });
  }
  await migrate(db);
  return { db, cleanup };
}
