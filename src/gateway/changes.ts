// Fan-out of generation changes to this process's event streams. One LISTEN per gateway process;
// the database trigger announces every versioned change ("id version owner"), whichever instance
// made it. When LISTEN had to be re-established, announcements may have been missed: every
// subscriber is told something may have changed, and re-reads.
import type { Db } from '../store/types.ts';

export const CHANGES_CHANNEL = 'itemgen_generation_changed';

export interface ChangeFeed {
  /** Calls `onChange` whenever generation `id` (may have) changed; returns the unsubscribe function. */
  subscribe(id: string, onChange: () => void): () => void;
  /** Calls `onChange(id)` when a generation of `apiKeyId` changed, `onChange(null)` when any may have. */
  subscribeOwner(apiKeyId: string, onChange: (id: string | null) => void): () => void;
  close(): Promise<void>;
}

function registry<T>() {
  const byKey = new Map<string, Set<T>>();
  return {
    add(key: string, fn: T) {
      let set = byKey.get(key);
      if (!set) byKey.set(key, (set = new Set()));
      set.add(fn);
      return () => {
        set.delete(fn);
        if (set.size === 0) byKey.delete(key);
      };
    },
    get: (key: string) => byKey.get(key) ?? [],
    all: () => [...byKey.values()].flatMap((set) => [...set]),
  };
}

export async function startChangeFeed(db: Db): Promise<ChangeFeed> {
  const byId = registry<() => void>();
  const byOwner = registry<(id: string | null) => void>();
  const stop = await db.listen(
    CHANGES_CHANNEL,
    (payload) => {
      const [id, , owner] = payload.split(' ');
      for (const fn of byId.get(id!)) fn();
      if (owner) for (const fn of byOwner.get(owner)) fn(id!);
    },
    () => {
      for (const fn of byId.all()) fn();
      for (const fn of byOwner.all()) fn(null);
    },
  );
  return {
    subscribe: (id, onChange) => byId.add(id, onChange),
    subscribeOwner: (apiKeyId, onChange) => byOwner.add(apiKeyId, onChange),
    close: stop,
  };
}
