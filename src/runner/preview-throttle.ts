// How often a job renders a live preview: the first step always, then at most once per interval
// (about 2 per second by default), so previews cost a bounded share of a fast GPU's steps and of
// the gateway's writes, whatever the step rate.
import type { Clock } from '../core/retry.ts';

export interface PreviewThrottle {
  /** Whether to render a preview at this step; true marks it rendered now. */
  due(): boolean;
}

export function createPreviewThrottle(intervalMs: number, clock: Pick<Clock, 'now'>): PreviewThrottle {
  let last = -Infinity;
  return {
    due() {
      const now = clock.now();
      if (now - last < intervalMs) return false;
      last = now;
      return true;
    },
  };
}
