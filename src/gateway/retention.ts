// The history sweep: removes what nobody may read any more, images (and their thumbnails) first,
// then rows, so no row ever points at images that are gone without being hidden, and no image
// outlives its row.
// - generations deleted (DELETE /v1/generations/{id}) longer ago than DELETED_KEPT_MS: their images
//   again (a crash between hiding and removing them leaves some), then the rows; until then a
//   repeated DELETE still answers 204.
// - with RETENTION_DAYS, finished generations older than that, and their images (the local folder
//   included; the GCS bucket's lifecycle rule in infra/ uses the same number as a backstop).
// Hourly and once at start, in bounded batches; one gateway instance at a time (a lease row).
import type { Logger } from '../core/log.ts';
import { storedKeys, type ImageStore } from '../storage/types.ts';
import { listExpiredGenerations } from '../store/sql/listExpiredGenerations.ts';
import { purgeGenerations } from '../store/sql/purgeGenerations.ts';
import { releaseSweepLease } from '../store/sql/releaseSweepLease.ts';
import { takeSweepLease } from '../store/sql/takeSweepLease.ts';
import type { Queryable } from '../store/types.ts';

const LEASE = 'retention';
/** Longer than a sweep can take (BATCHES_PER_SWEEP bounded batches), so two never overlap. */
const LEASE_SECONDS = 600;
export const DELETED_KEPT_MS = 24 * 3600_000;
const DAY_MS = 24 * 3600_000;

export interface RetentionOptions {
  db: Queryable;
  images: ImageStore;
  log: Logger;
  /** Finished generations older than this many days are removed; null: kept forever. */
  retentionDays: number | null;
  intervalMs?: number;
  batchSize?: number;
  batchesPerSweep?: number;
  now?: () => number;
}

export interface Retention {
  /** One sweep now (after this instance's running one); resolves with the generations purged, 0 when another instance holds the lease. */
  sweep(): Promise<number>;
  stop(): Promise<void>;
}

export function startRetention(o: RetentionOptions): Retention {
  const intervalMs = o.intervalMs ?? 3600_000;
  const batchSize = o.batchSize ?? 100;
  const batchesPerSweep = o.batchesPerSweep ?? 20;
  const now = o.now ?? Date.now;
  let running: Promise<number> = Promise.resolve(0);
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const sweepOnce = async (): Promise<number> => {
    if (!(await takeSweepLease(o.db, LEASE, LEASE_SECONDS))) return 0;
    let purged = 0;
    try {
      for (let batch = 0; batch < batchesPerSweep && !stopped; batch++) {
        const at = now();
        const expired = await listExpiredGenerations(o.db, {
          deletedBefore: new Date(at - DELETED_KEPT_MS),
          finishedBefore: o.retentionDays === null ? null : new Date(at - o.retentionDays * DAY_MS),
          limit: batchSize,
        });
        const cleared: string[] = [];
        for (const g of expired) {
          try {
            await o.images.delete(storedKeys(g.images.map((i) => i.key)));
            cleared.push(g.id);
          } catch (err) {
            // The row stays, so the next sweep tries its images again.
            o.log.warn('could not delete the images of an expired generation; retried next sweep', { err, id: g.id });
          }
        }
        if (cleared.length > 0) purged += await purgeGenerations(o.db, cleared);
        if (expired.length < batchSize || cleared.length === 0) break;
      }
    } finally {
      await releaseSweepLease(o.db, LEASE);
    }
    if (purged > 0) o.log.info('expired generations purged with their images', { count: purged, retention_days: o.retentionDays });
    return purged;
  };

  const sweep = () => {
    running = running.catch(() => 0).then(sweepOnce);
    return running;
  };
  const scheduled = () => {
    sweep()
      .catch((err) => o.log.warn('retention sweep failed; tried again next interval', { err }))
      .finally(() => {
        if (!stopped) {
          timer = setTimeout(scheduled, intervalMs);
          timer.unref();
        }
      });
  };
  scheduled();

  return {
    sweep,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running.catch(() => 0);
    },
  };
}
