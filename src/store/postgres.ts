// Db over a PostgreSQL server through the `postgres` driver: a pool, prepared statements, and
// LISTEN on a connection of its own.
import postgres from 'postgres';
import type { Db, Row } from './db.ts';

export async function openPostgres(url: string, poolSize: number, schema?: string): Promise<Db> {
  if (schema) {
    const admin = postgres(url, { max: 1, onnotice: () => {} });
    try {
      await admin.unsafe(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    } finally {
      await admin.end();
    }
  }
  const sql = postgres(url, {
    max: poolSize,
    onnotice: () => {},
    // int8 (counts, sequence numbers, seeds) arrive as JS numbers; every value we keep is < 2^53.
    types: { int8: { to: 20, from: [20], serialize: (v: number) => String(v), parse: (v: string) => Number(v) } },
    connection: schema ? { search_path: schema } : {},
  });
  const query = async <T extends Row>(text: string, params: unknown[] = []) =>
    (await sql.unsafe(text, params as never[], { prepare: true })) as unknown as T[];
  return {
    kind: 'postgres',
    query,
    async exec(text) {
      await sql.unsafe(text);
    },
    async transaction(fn) {
      return (await sql.begin((tx) =>
        fn({
          query: async <T extends Row>(text: string, params: unknown[] = []) =>
            (await tx.unsafe(text, params as never[], { prepare: true })) as unknown as T[],
          exec: async (text: string) => {
            await tx.unsafe(text);
          },
        }),
      )) as never;
    },
    async listen(channel, onPayload) {
      const { unlisten } = await sql.listen(channel, onPayload);
      return unlisten;
    },
    async close() {
      await sql.end({ timeout: 5 });
    },
  };
}
