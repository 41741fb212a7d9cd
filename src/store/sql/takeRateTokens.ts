// The shared token buckets of the rate limits (migration 004): taking tokens.
import type { Queryable } from '../types.ts';

export interface TakenTokens {
  granted: number;
  /** Tokens left in the shared bucket (fractions are tokens refilling). */
  left: number;
}

/** Takes up to `want` tokens from `bucket` (refilled at `perSecond` up to `capacity`). */
export async function takeRateTokens(db: Queryable, bucket: string, capacity: number, perSecond: number, want: number): Promise<TakenTokens> {
  const rows = await db.query('SELECT granted, tokens_left FROM take_rate_tokens($1, $2, $3, $4)', [bucket, capacity, perSecond, want]);
  return { granted: Number(rows[0]!.granted), left: Number(rows[0]!.tokens_left) };
}
