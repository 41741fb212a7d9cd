// Group commit of submits (docs/architecture.md, decision 17): submits that arrive while the
// submit statements' slots are busy wait here and go together in the next statement, one
// multi-row insertGenerations instead of one statement per request. A submit that finds a slot
// free is sent at once, alone, so a lone client's latency is that of one statement; under load
// many requests share one statement, its round trip and its commit.
import { AsyncLocalStorage } from 'node:async_hooks';
import { DatabaseUnavailableError } from './errors.ts';
import { insertGenerations, type InsertOutcome, type NewGeneration } from './sql/insertGeneration.ts';
import type { Queryable } from './types.ts';

export interface GenerationInserter {
  /** Resolves once the row is committed (or refused); a statement that failed rejects its rows. */
  insert(g: NewGeneration): Promise<InsertOutcome>;
}

export interface GroupCommitOptions {
  /** Most rows in one statement. */
  maxBatch?: number;
  /**
   * Statements in flight at once. Two: while one commits, the next is already at the server
   * (waiting for the key's counter row), so the database never idles for a round trip.
   */
  maxInFlight?: number;
}

interface Waiting {
  row: NewGeneration;
  resolve: (outcome: InsertOutcome) => void;
  reject: (err: unknown) => void;
  /** Runs a function in the submit's async context, so the statement's span joins its trace. */
  inContext: <R>(fn: () => R) => R;
}

export function groupCommit(db: Queryable, { maxBatch = 128, maxInFlight = 2 }: GroupCommitOptions = {}): GenerationInserter {
  const waiting: Waiting[] = [];
  let inFlight = 0;

  const next = () => {
    while (inFlight < maxInFlight && waiting.length > 0) {
      const batch = waiting.splice(0, maxBatch);
      inFlight += 1;
      void batch[0]!.inContext(() => commit(db, batch)).finally(() => {
        inFlight -= 1;
        next();
      });
    }
  };

  return {
    insert: (row) =>
      new Promise<InsertOutcome>((resolve, reject) => {
        waiting.push({ row, resolve, reject, inContext: AsyncLocalStorage.snapshot() });
        next();
      }),
  };
}

/**
 * One statement for the batch. A statement the database refused (a row breaking a constraint, a
 * deadlock with a transition) committed nothing, so each row is then tried alone and fails alone.
 * A lost connection fails every row: the statement may or may not have committed, and a client
 * retries with its Idempotency-Key.
 */
async function commit(db: Queryable, batch: Waiting[]): Promise<void> {
  try {
    const outcomes = await insertGenerations(db, batch.map((w) => w.row));
    batch.forEach((w, i) => w.resolve(outcomes[i]!));
  } catch (err) {
    if (batch.length === 1 || err instanceof DatabaseUnavailableError) {
      for (const w of batch) w.reject(err);
      return;
    }
    // In order, so the caps see the rows as the batch had them.
    for (const w of batch) await commit(db, [w]);
  }
}
