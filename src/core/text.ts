// Text that PostgreSQL can store: its text and jsonb types reject NUL, and an unpaired UTF-16
// surrogate has no UTF-8 form. Checked at the edge, so such input is a 422 that names the field,
// never a 500 from the database.
import { z } from 'zod';

const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

export const isStorableText = (s: string): boolean => !UNSTORABLE.test(s);

/** A string schema that refuses NUL characters and unpaired surrogates. */
export const storableText = () => z.string().refine(isStorableText, 'must not contain NUL characters or unpaired surrogates');

/** The same text with what PostgreSQL cannot store replaced by U+FFFD (for messages we compose ourselves). */
export const toStorableText = (s: string): string => s.replace(new RegExp(UNSTORABLE.source, 'g'), '\ufffd');
