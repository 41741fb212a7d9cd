// bench:gateway's pgbench runs: the tool itself, and the submit statement's own rates
// (docs/architecture.md, decision 17), so the gateway's submits can be read against the raw
// single-row insert and against the statement the gateway sends, each measured in the same run.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type postgres from 'postgres';
import { denoisingSteps, generationCost, type GenerationParams } from '../../src/core/request.ts';
import { INSERT_GENERATIONS_SQL, insertGenerationsParam, type NewGeneration } from '../../src/store/sql/insertGeneration.ts';

export interface PgbenchResult {
  /** Statements (pgbench transactions) per second. */
  tps: number;
  latencyAvgMs: number;
}

/**
 * Runs `sql` (one statement, no parameters) from `clients` pgbench clients, prepared, for
 * `seconds`; `during` runs beside it, given pgbench's pid (CPU sampling).
 */
export async function pgbench(
  url: string,
  sql: string,
  o: { clients: number; seconds: number; during?: (pid: number) => Promise<void> },
): Promise<PgbenchResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'itemgen-bench-'));
  const script = path.join(dir, 'statement.sql');
  // One line: pgbench reads a script line by line.
  fs.writeFileSync(script, `${sql.replace(/\s*\n\s*/g, ' ')};\n`);
  try {
    const u = new URL(url);
    const args = ['-h', u.hostname, '-p', u.port || '5432', '-U', decodeURIComponent(u.username || 'postgres')];
    args.push('-n', '-c', String(o.clients), '-j', '2', '-T', String(o.seconds), '-M', 'prepared', '-f', script, u.pathname.slice(1));
    const child = spawn('/usr/bin/pgbench', args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...(u.password ? { PGPASSWORD: decodeURIComponent(u.password) } : {}) },
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    await o.during?.(child.pid!);
    const code = await exited;
    const tps = /tps = ([\d.]+)/.exec(out);
    const lat = /latency average = ([\d.]+) ms/.exec(out);
    if (code !== 0 || !tps) throw new Error(`pgbench failed (exit ${code}):\n${out}`);
    return { tps: Number(tps[1]), latencyAvgMs: lat ? Number(lat[1]) : NaN };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export interface SubmitStatementRates {
  /** Rows per second, each variant at `clients` clients. */
  plainInsert: number;
  oneRow: number;
  batched: number;
  batchRows: number;
  clients: number;
}

const SECONDS = 5;
const BATCH_ROWS = 16;

/**
 * The gateway's submit statement (insertGenerations, its exact text) from pgbench, one row per
 * statement and BATCH_ROWS per statement, one key as the gateway bench uses, beside a plain INSERT
 * of the same row into `generations` (its indexes and triggers, no cap, no outbox, no
 * idempotency): the pieces between the raw insert and a submit. Leaves the tables as it found
 * them, so the gateway's phases start from empty.
 */
export async function submitStatementRates(url: string, bench: postgres.Sql, params: GenerationParams, clients = 64): Promise<SubmitStatementRates> {
  const [key] = await bench.unsafe(
    `INSERT INTO api_keys (name, key_hash, prefix, max_unfinished, max_unfinished_cost)
     VALUES ('pgbench', 'pgbench-' || gen_random_uuid(), 'pgbench', 1000000000, 1000000000000) RETURNING id`,
  );
  const row: NewGeneration = {
    apiKeyId: String(key!.id),
    maxUnfinished: 1_000_000_000,
    maxUnfinishedCost: 1_000_000_000_000,
    idempotencyKey: null,
    requestHash: null,
    params,
  };
  // A space after each key's colon: pgbench reads `:name` (`"ik":null`) as one of its variables.
  const literal = (json: string) => `'${json.replace(/":/g, '": ').replace(/'/g, "''")}'`;
  const statement = (rows: NewGeneration[]) => INSERT_GENERATIONS_SQL.replace('$1', literal(insertGenerationsParam(rows)));
  try {
    const plain = await pgbench(
      url,
      `INSERT INTO generations (api_key_id, params, total_steps, cost) VALUES ('${row.apiKeyId}', ${literal(JSON.stringify(params))}, ${denoisingSteps(params)}, ${generationCost(params)})`,
      { clients, seconds: SECONDS },
    );
    const one = await pgbench(url, statement([row]), { clients, seconds: SECONDS });
    const many = await pgbench(url, statement(Array(BATCH_ROWS).fill(row)), { clients, seconds: SECONDS });
    return { plainInsert: plain.tps, oneRow: one.tps, batched: many.tps * BATCH_ROWS, batchRows: BATCH_ROWS, clients };
  } finally {
    await bench.unsafe('TRUNCATE generations, dispatch_outbox CASCADE');
    await bench.unsafe('DELETE FROM api_key_usage WHERE api_key_id = $1', [row.apiKeyId]);
    await bench.unsafe('DELETE FROM api_keys WHERE id = $1', [row.apiKeyId]);
  }
}
