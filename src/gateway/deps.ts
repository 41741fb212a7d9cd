// What the gateway app is built from. Tests pass their own; src/gateway/service.ts wires the real ones.
import type { Logger } from '../core/log.ts';
import type { JobQueue } from '../queue/types.ts';
import type { ImageStore } from '../storage/types.ts';
import type { GenerationInserter } from '../store/group-commit.ts';
import type { Db } from '../store/types.ts';
import type { AuthEnv } from './auth.ts';
import type { ChangeFeed } from './changes.ts';
import type { Dispatcher } from './dispatcher.ts';
import type { GatewayMetrics } from './metrics.ts';
import type { RateLimiter, RatePolicy } from './rate-limit.ts';
import type { StreamSlots } from './stream-slots.ts';
import type { TargetPolicy } from '../webhooks/index.ts';

export interface GatewayDeps {
  db: Db;
  /** Inserts submits on `db`, many to a statement under load (src/store/group-commit.ts). */
  inserter: GenerationInserter;
  queue: JobQueue;
  /** Handed each committed submit (src/gateway/dispatcher.ts). */
  dispatcher: Pick<Dispatcher, 'enqueue'>;
  changes: ChangeFeed;
  streamSlots: StreamSlots;
  limiter: RateLimiter;
  metrics: GatewayMetrics;
  log: Logger;
  /** Where runners stored the images: links (GCS) or bytes (local folder). */
  images: ImageStore;
  settings: GatewaySettings;
  /** Where webhooks may be sent (checked at submit; the deliverer checks again at connect time). */
  webhookPolicy: TargetPolicy;
}

export interface GatewaySettings {
  /** Started without API keys on loopback: open until a key exists. */
  open: boolean;
  /** Started without API keys off loopback: every API request is 401, saying how to create the first key, until one exists. */
  locked: boolean;
  runnerToken: string;
  leaseSeconds: number;
  maxBodyBytes: number;
  /** Longest a request body may take to arrive, once its headers have (then 408). */
  bodyTimeoutMs: number;
  /** Base of links in responses; from the request when absent. */
  publicUrl: string | undefined;
  /** Without publicUrl: the Host names requests may carry (see servedHosts); null with publicUrl. */
  allowedHost: ((hostname: string) => boolean) | null;
  apiKeyCacheMs: number;
  /** Cap on unfinished generations of a key created without one, and of the open mode. */
  defaultMaxUnfinished: number;
  /** Compute budget of keys without their own, and of the open mode. */
  defaultMaxUnfinishedCost: number;
  /** Cap on one generation's cost. */
  maxGenerationCost: number;
  /** Bearer token of the admin API (/admin/v1); null: no admin API. */
  adminToken: string | null;
  rateLimits: Record<'submit' | 'request' | 'address', RatePolicy | null>;
  trustedProxyHops: number;
  /** Interval of SSE keep-alive comments, and of each stream's re-read. */
  sseKeepAliveMs: number;
  /**
   * `/metrics` without a token: only on loopback. Elsewhere (Cloud Run is reachable from the
   * internet) it needs the runner token, as the internal API does.
   */
  metricsOpen: boolean;
}

export type GatewayEnv = AuthEnv;
