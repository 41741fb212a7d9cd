// Spans for store calls (docs/architecture.md, decision 15), at the one place every statement
// passes: the Db's query. A span is named for the statement's file in sql/ (`insertGeneration`,
// `claimGeneration`, …), found once per SQL text from the caller's stack, and carries no
// parameter. Only within a recording span: statements outside any trace (a sweep's poll, the
// rate limiter's clean-up) would each be a trace of their own, and with traces off this costs one
// check per statement.
import { recording, SpanKind, withSpan } from '../telemetry/index.ts';
import type { Db, Queryable, Row } from './types.ts';

const STATEMENT_FILE = /[/\\]store[/\\]sql[/\\](\w+)\.[cm]?[jt]s\b/;
/** SQL texts are the statement files' constants (a few vary with their input): the cache stays small, and is bounded. */
const names = new Map<string, string>();
const MAX_NAMES = 500;

function statementName(text: string): string {
  let name = names.get(text);
  if (name === undefined) {
    name = STATEMENT_FILE.exec(new Error().stack ?? '')?.[1] ?? 'query';
    if (names.size < MAX_NAMES) names.set(text, name);
  }
  return name;
}

function traced<Q extends Queryable>(q: Q): Q {
  const query = q.query.bind(q);
  return Object.assign(Object.create(q) as Q, {
    query: <T extends Row>(text: string, params?: unknown[]): Promise<T[]> =>
      recording()
        ? withSpan(statementName(text), { 'db.system.name': 'postgresql' }, () => query<T>(text, params), { kind: SpanKind.CLIENT })
        : query<T>(text, params),
  });
}

/** `db` with a span per statement run in a trace, transactions' statements included. */
export function traceStatements(db: Db): Db {
  const transaction = db.transaction.bind(db);
  return Object.assign(traced(db), {
    transaction: <T>(fn: Parameters<Db['transaction']>[0]) => transaction<T>((tx) => fn(traced(tx)) as Promise<T>),
  }) as Db;
}
