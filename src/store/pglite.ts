// Db over PGlite: real PostgreSQL compiled to WASM, in-process, persisted under DATA_DIR. One
// connection, so statements queue; that is the embedded mode's trade for needing no server.
import fs from 'node:fs/promises';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import type { Db, Row } from './db.ts';

export async function openPglite(dataDir: string, schema?: string): Promise<Db> {
  const dir = path.join(dataDir, 'pglite');
  await fs.mkdir(dir, { recursive: true });
  const pg = await PGlite.create(dir);
  if (schema) await pg.exec(`CREATE SCHEMA IF NOT EXISTS "${schema}"; SET search_path TO "${schema}";`);
  return {
    kind: 'pglite',
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
      await pg.close();
    },
  };
}
