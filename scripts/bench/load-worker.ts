// The HTTP load generator of scripts/bench/gateway.ts, forked as a child process so that
// autocannon's event loop never competes with the gateway's (or the bench's own bookkeeping).
// It receives one LoadJob per IPC message and answers with a LoadResult.
//
// Latency percentiles are computed here from autocannon's per-response event rather than taken
// from its histogram: the histogram stores whole milliseconds, too coarse for sub-ms submits.
import autocannon from 'autocannon';
import { percentileOfSorted } from './common.ts';

export interface LoadJob {
  url: string;
  connections: number;
  durationS: number;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  /** A fixed path, or … */
  path?: string;
  /** … paths to cycle through, one per request (status reads over many ids). */
  paths?: string[];
  body?: string;
  /** Requests per second over all connections, for a load that must not saturate the server; as fast as it answers when absent. */
  rate?: number;
}

export interface LoadResult {
  durationS: number;
  ok: number;
  /** Responses by status code, 2xx included. */
  statuses: Record<string, number>;
  /** Socket errors and timeouts: requests that got no response at all. */
  errors: number;
  timeouts: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
}

function run(job: LoadJob): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    let latencies = new Float64Array(1 << 16);
    let n = 0;
    let next = 0;
    const paths = job.paths;
    const instance = autocannon(
      {
        url: job.url,
        connections: job.connections,
        duration: job.durationS,
        ...(job.rate ? { overallRate: job.rate } : {}),
        pipelining: 1,
        timeout: 10,
        requests: [
          {
            method: job.method,
            headers: job.headers,
            ...(job.path ? { path: job.path } : {}),
            ...(job.body !== undefined ? { body: job.body } : {}),
            ...(paths?.length ? { setupRequest: (req) => ({ ...req, path: paths[next++ % paths.length]! }) } : {}),
          },
        ],
      },
      (err, result) => {
        if (err) return reject(err);
        const sorted = latencies.subarray(0, n).sort();
        const statuses: Record<string, number> = {};
        for (const [code, { count }] of Object.entries(result.statusCodeStats)) statuses[code] = count;
        const ok = Object.entries(statuses).reduce((s, [code, c]) => (code.startsWith('2') ? s + c : s), 0);
        let sum = 0;
        for (const v of sorted) sum += v;
        resolve({
          durationS: result.duration,
          ok,
          statuses,
          errors: result.errors,
          timeouts: result.timeouts,
          p50Ms: percentileOfSorted(sorted, 50),
          p99Ms: percentileOfSorted(sorted, 99),
          meanMs: n ? sum / n : NaN,
        });
      },
    );
    instance.on('response', (_client, _status, _bytes, ms) => {
      if (n === latencies.length) {
        const grown = new Float64Array(latencies.length * 2);
        grown.set(latencies);
        latencies = grown;
      }
      latencies[n++] = ms;
    });
  });
}

process.on('message', (job: LoadJob) => {
  run(job).then(
    (result) => process.send!({ ok: true, result }),
    (err: Error) => process.send!({ ok: false, error: err.stack ?? String(err) }),
  );
});
// Exit with the bench: the IPC channel closes when the parent goes away.
process.on('disconnect', () => process.exit(0));
