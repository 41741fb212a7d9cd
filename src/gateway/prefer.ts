// The Prefer request header (RFC 7240) of POST /v1/generations: `wait` or `wait=N` asks for the
// answer to be held until the generation is finished or N seconds pass (Replicate's synchronous
// mode). Other preferences are ignored, as RFC 7240 asks; a `wait` whose value is not a whole
// number of seconds from 1 is refused (400), since silently answering at once would surprise the
// client that asked to wait; above MAX_WAIT_SECONDS it is capped, and Preference-Applied says so.
import { AppError } from '../core/errors.ts';

export const MAX_WAIT_SECONDS = 60;

/** Seconds to hold the answer, or null when the header asks for no waiting. */
export function preferredWait(header: string | undefined): number | null {
  if (header === undefined) return null;
  let wait: number | null = null;
  for (const preference of header.split(',')) {
    // A preference is token[=value] with optional ;parameters, which `wait` has none of.
    const [head = ''] = preference.split(';');
    const eq = head.indexOf('=');
    const name = (eq < 0 ? head : head.slice(0, eq)).trim().toLowerCase();
    if (name !== 'wait') continue;
    const raw = eq < 0 ? '' : head.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1');
    if (raw === '') {
      wait = MAX_WAIT_SECONDS;
      continue;
    }
    if (!/^\d+$/.test(raw) || Number(raw) < 1) {
      throw new AppError(
        400,
        'invalid_prefer',
        `Prefer: wait=${raw} is not a number of seconds: send "Prefer: wait" (${MAX_WAIT_SECONDS} s) or "Prefer: wait=N" with N from 1 to ${MAX_WAIT_SECONDS}.`,
        { header: 'Prefer' },
      );
    }
    wait = Math.min(Number(raw), MAX_WAIT_SECONDS);
  }
  return wait;
}
