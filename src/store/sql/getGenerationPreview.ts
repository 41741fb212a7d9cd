import type { Queryable } from '../types.ts';

export interface GenerationPreview {
  step: number;
  png: Buffer;
}

/** The latest preview of a processing generation, scoped to its owner when `apiKeyId` is given. */
export async function getGenerationPreview(db: Queryable, id: string, apiKeyId?: string): Promise<GenerationPreview | null> {
  const rows = await db.query(
    `SELECT p.step, encode(p.png, 'base64') AS png
     FROM generation_previews p JOIN generations g ON g.id = p.generation_id
     WHERE p.generation_id = $1 AND ($2::uuid IS NULL OR g.api_key_id = $2::uuid) AND g.status = 'processing'`,
    [id, apiKeyId ?? null],
  );
  const row = rows[0];
  // encode() breaks base64 into lines of 76 characters; Buffer.from skips the newlines.
  return row ? { step: Number(row.step), png: Buffer.from(String(row.png), 'base64') } : null;
}
