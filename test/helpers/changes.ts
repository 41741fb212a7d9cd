// Waits on a generation's next change through the database's change notifications: the event
// itself, never a sleep.
import { CHANGES_CHANNEL } from '../../src/gateway/changes.ts';
import type { Db } from '../../src/store/types.ts';

/** Starts listening before it returns; `changed` resolves at the generation's next change. */
export async function watchChanges(db: Db, id: string): Promise<{ changed: Promise<void> }> {
  let seen: () => void = () => {};
  const next = new Promise<void>((resolve) => (seen = resolve));
  const stop = await db.listen(CHANGES_CHANNEL, (payload) => {
    if (payload.startsWith(id)) seen();
  });
  return { changed: next.then(stop) };
}
