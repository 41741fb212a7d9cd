// Fan-out of generation changes to this process's event streams. One LISTEN per gateway process;
// the database trigger announces every versioned change, whichever instance made it.
import type { Db } from '../store/types.ts';

export const CHANGES_CHANNEL = 'itemgen_generation_changed';

export interface ChangeFeed {
  /** Calls `onChange` whenever generation `id` changes; returns the unsubscribe function. */
  subscribe(id: string, onChange: () => void): () => void;
  close(): Promise<void>;
}

export async function startChangeFeed(db: Db): Promise<ChangeFeed> {
  const subscribers = new Map<string, Set<() => void>>();
  const stop = await db.listen(CHANGES_CHANNEL, (payload) => {
    const id = payload.split(' ', 1)[0]!;
    for (const fn of subscribers.get(id) ?? []) fn();
  });
  return {
    subscribe(id, onChange) {
      let set = subscribers.get(id);
      if (!set) subscribers.set(id, (set = new Set()));
      set.add(onChange);
      return () => {
        set.delete(onChange);
        if (set.size === 0) subscribers.delete(id);
      };
    },
    close: stop,
  };
}
