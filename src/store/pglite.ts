// Db over PGlite: real PostgreSQL compiled to WASM, in-process, persisted under DATA_DIR. One
// connection, so statements queue; that is the embedded mode's trade for needing no server. One
// process at a time: opening takes DATA_DIR's lock (data-dir-lock.ts), closing gives it back.
import fs from 'node:fs/promises';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { lockDataDir } from './data-dir-lock.ts';
import type { Db, Row } from './types.ts';

export async function openPglite(dataDir: string, schema?: string): Promise<Db> {
  const lock = await lockDataDir(dataDir);
  let pg: PGlite;
  try {
    const dir = path.join(dataDir, 'pglite');
    await fs.mkdir(dir, { recursive: true });
    pg = await PGlite.create(dir);
    if (schema) await pg.exec(`CREATE SCHEMA IF NOT EXISTS "${schema}"; SET search_path TO "${schema}";`);
  } catch (err) {
    await lock.release();
    throw err;
  }
  return {
    kind: 'pglite',
    lock,
    async query<T extends Row>(text: string, params: unknown[] = []) {
      return (await pg.query<T>(text, params)).rows;
    },
    async exec(text) {
      await pg.exec(text);
    },
    async transaction(fn) {
      return pg.transaction((tx) =>
        fn({
          query: async <T extends Row>(text: string, params: unknown[] = []) => (await tx.query<T>(text, params)).rows,
          exec: async (text: string) => {
            await tx.exec(text);
          },
        }),
      );
    },
    async listen(channel, onPayload) {
      return pg.listen(channel, onPayload);
    },
    async close() {
      try {
        await pg.close();
      } finally {
        await lock.release();
      }
    },
  };
}
