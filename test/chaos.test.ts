// The chaos run (scripts/chaos/harness.ts; `npm run chaos` is the full-size one) at a size for
// `npm test`: 40 small jobs on a gateway and two runner processes, real PostgreSQL and RabbitMQ
// through TCP proxies, while the gateway is SIGKILLed and restarted during the submits, a runner is
// SIGKILLed mid-job, and the broker and database links are cut. Every invariant of the harness must
// hold: every accepted id terminal exactly once, one stored object per image, the outbox empty, no
// lease left, every SSE watcher given its terminal event exactly once.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatReport, formatSummary, runChaos } from '../scripts/chaos/harness.ts';
import { AMQP_URL, DATABASE_URL } from './helpers/services.ts';

test('chaos: kills, cuts and a gateway restart under load lose nothing and duplicate nothing', async () => {
  const report = await runChaos({
    jobs: 40,
    runners: 2,
    deadlineMs: 60_000,
    // The gateway first, while jobs are still being submitted (submits must retry and replay);
    // the database cut last, with no restart after it to reconnect the event streams.
    faultOrder: ['gatewayKill', 'dbCut', 'runnerKill', 'brokerCut'],
    cancels: 2,
    cutMs: 3000,
    // 'drop': connections accepted and closed at once, as a proxy whose backend is down does.
    cutModes: ['drop'],
    submitRate: 4,
    databaseUrl: DATABASE_URL,
    amqpUrl: AMQP_URL,
    seed: 40,
  });
  const text = formatReport(report);
  console.log(formatSummary(report));
  for (const inv of report.invariants) assert.ok(inv.ok, `${inv.name}\n${text}`);
  assert.ok(report.ok, text);
  assert.is(report.jobs.accepted, 40, text);
  assert.equal(
    { ...report.faults.injected, cancel: 0 },
    { runnerKill: 1, brokerCut: 1, dbCut: 1, dbPartition: 0, gatewayRestart: 0, gatewayKill: 1, cancel: 0 },
    `every planned fault was injected\n${text}`,
  );
  assert.ok(report.submit.retries > 0, `the gateway restart met submits\n${text}`);
});

test.run();
