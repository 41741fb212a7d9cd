// Every alert of k8s/alerts.ts checked by promtool as Prometheus would load it, and unit-tested on
// synthetic series: for each alert at least one history that must fire it (with the labels it must
// carry) and one that must not. The test fails when an alert has no cases, so a new alert comes
// with its own.
import path from 'node:path';
import { Yaml } from 'cdk8s';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { environments } from '../../infra/environments.ts';
import { alertGroups, NO_RUNNER_LIMIT_S, QUEUE_AGE_LIMIT_S, RUNNER_HPA, rulesFile, SCRAPE_JOBS } from '../../k8s/alerts.ts';
import { topologyFor } from '../../src/queue/rabbitmq.ts';
import { promtool } from '../helpers/promtool.ts';

interface Series {
  series: string;
  values: string;
}

/** A history of series (one sample a minute) and when it is looked at. */
interface Case {
  why: string;
  series: Series[];
  at: string;
  /** The labels the alert carries besides its severity (from the expression's result). */
  labels?: Record<string, string>;
}

const env = environments.prod!;
const ns = env.kubernetes.namespace;
const deadQueue = topologyFor(env.amqpPrefix).deadQueue;

const oldest = (instance: string, values: string): Series => ({ series: `itemgen_oldest_pending_generation_age_seconds{instance="${instance}"}`, values });
const jobs = (outcome: string, values: string): Series => ({ series: `itemgen_runner_jobs_total{job="${SCRAPE_JOBS.runner}",instance="r1",outcome="${outcome}"}`, values });
const webhooks = (outcome: string, values: string): Series => ({ series: `itemgen_webhook_deliveries_total{instance="gw-a",outcome="${outcome}"}`, values });
const hpa = (metric: string, values: string): Series => ({
  series: `kube_horizontalpodautoscaler_${metric}{namespace="${ns}",horizontalpodautoscaler="${RUNNER_HPA}"}`,
  values,
});
const restarts = (namespace: string, values: string): Series => ({
  series: `kube_pod_container_status_restarts_total{namespace="${namespace}",pod="runner-7d9f-x2",container="runner"}`,
  values,
});

const CASES: Record<string, { fire: Case; quiet: Case[] }> = {
  ItemgenQueueAge: {
    // A minute older every minute: past the limit after limit/60 minutes, then `for` 5m.
    fire: { why: 'the oldest waits ever longer', series: [oldest('gw-a', '0+60x40'), oldest('gw-b', '0+60x40')], at: `${QUEUE_AGE_LIMIT_S / 60 + 7}m` },
    quiet: [
      { why: 'the oldest stays just under the limit', series: [oldest('gw-a', `0+60x${QUEUE_AGE_LIMIT_S / 60 - 1} ${QUEUE_AGE_LIMIT_S - 60}x30`)], at: '40m' },
      { why: 'the limit is passed for less than 5 minutes', series: [oldest('gw-a', `0+60x${QUEUE_AGE_LIMIT_S / 60 + 2} 0x30`)], at: `${QUEUE_AGE_LIMIT_S / 60 + 2}m` },
    ],
  },
  ItemgenNoRunnerWhileJobsWait: {
    fire: { why: 'work waits and no runner series exists', series: [oldest('gw-a', '0+60x30')], at: `${NO_RUNNER_LIMIT_S / 60 + 4}m` },
    quiet: [
      {
        why: 'a runner is up (scaling up takes its time)',
        series: [oldest('gw-a', '0+60x30'), { series: `up{job="${SCRAPE_JOBS.runner}",instance="r1"}`, values: '1x30' }],
        at: `${NO_RUNNER_LIMIT_S / 60 + 4}m`,
      },
      { why: 'nothing waits and no runner runs (scaled to zero)', series: [oldest('gw-a', '0x30')], at: '20m' },
    ],
  },
  ItemgenGatewayMetricsAbsent: {
    fire: { why: 'no gateway series at all', series: [{ series: `up{job="${SCRAPE_JOBS.runner}",instance="r1"}`, values: '1x30' }], at: '15m' },
    quiet: [
      { why: 'the gateway reports', series: [oldest('gw-a', '0x30')], at: '15m' },
      { why: 'a gap shorter than 10 minutes', series: [oldest('gw-a', '0x5 _x5 0x20')], at: '10m' },
    ],
  },
  ItemgenDeadLetters: {
    fire: {
      why: 'one generation dead-lettered',
      series: [{ series: 'itemgen_generations_dead_lettered_total{instance="gw-a",reason="delivery_limit"}', values: '0 0 0 1 1 1 1 1 1 1' }],
      at: '6m',
    },
    quiet: [{ why: 'none dead-lettered', series: [{ series: 'itemgen_generations_dead_lettered_total{instance="gw-a",reason="delivery_limit"}', values: '0x60' }], at: '40m' }],
  },
  ItemgenDeadLettersUnhandled: {
    fire: { why: 'letters stay in the queue', series: [{ series: `rabbitmq_detailed_queue_messages{queue="${deadQueue}",instance="rabbitmq-0"}`, values: '3x30' }], at: '20m' },
    quiet: [
      { why: 'letters are consumed at once', series: [{ series: `rabbitmq_detailed_queue_messages{queue="${deadQueue}",instance="rabbitmq-0"}`, values: '3 0x29' }], at: '20m' },
      { why: 'messages in another queue', series: [{ series: `rabbitmq_detailed_queue_messages{queue="${env.amqpPrefix}.generate",instance="rabbitmq-0"}`, values: '3x30' }], at: '20m' },
    ],
  },
  ItemgenFailureRatio: {
    fire: { why: 'a third of the jobs fail', series: [jobs('completed', '0+10x30'), jobs('failed', '0+5x30')], at: '25m' },
    quiet: [
      { why: 'one in twenty fails', series: [jobs('completed', '0+19x30'), jobs('failed', '0+1x30')], at: '25m' },
      { why: 'the only two jobs in a quiet hour failed', series: [jobs('completed', '0x30'), jobs('failed', '0 0 1 1 2 2x25')], at: '10m' },
    ],
  },
  ItemgenCrashLooping: {
    fire: { why: 'a restart a minute', series: [restarts(ns, '0+1x30')], at: '15m', labels: { pod: 'runner-7d9f-x2', container: 'runner' } },
    quiet: [
      { why: 'one restart (a spot node taken back)', series: [restarts(ns, '0 0 1 1x27')], at: '15m' },
      { why: 'a pod of another namespace crash-loops', series: [restarts('kube-system', '0+1x30')], at: '15m' },
    ],
  },
  ItemgenGpuPoolAtMax: {
    fire: { why: 'desired runners at the maximum for long', series: [hpa('status_desired_replicas', '8x60'), hpa('spec_max_replicas', '8x60')], at: '40m' },
    quiet: [
      { why: 'below the maximum', series: [hpa('status_desired_replicas', '7x60'), hpa('spec_max_replicas', '8x60')], at: '40m' },
      { why: 'at the maximum for a short burst', series: [hpa('status_desired_replicas', '7x20 8x20'), hpa('spec_max_replicas', '8x60')], at: '40m' },
    ],
  },
  ItemgenWebhookFailures: {
    fire: { why: 'most attempts retry or give up', series: [webhooks('delivered', '0+1x60'), webhooks('retrying', '0+2x60'), webhooks('gave_up', '0+1x60')], at: '50m' },
    quiet: [{ why: 'a receiver retried now and then', series: [webhooks('delivered', '0+10x60'), webhooks('retrying', '0+1x60'), webhooks('gave_up', '0x60')], at: '50m' }],
  },
};

const rules = alertGroups(env).flatMap((g) => g.rules);

test('every alert has a case that must fire and one that must not, and no case names an alert that does not exist', () => {
  assert.equal(Object.keys(CASES).sort(), rules.map((r) => r.alert).sort());
  for (const [alert, { quiet }] of Object.entries(CASES)) assert.ok(quiet.length >= 1, alert);
  assert.is(new Set(rules.map((r) => r.alert)).size, rules.length, 'alert names are unique');
});

test('promtool check rules accepts every environment’s rules file', () => {
  for (const e of Object.values(environments)) {
    const { status, output } = promtool({ 'alerts.rules.yaml': rulesFile(e) }, (dir) => ['check', 'rules', path.join(dir, 'alerts.rules.yaml')]);
    assert.is(status, 0, output);
    assert.match(output, `SUCCESS: ${rules.length} rules found`);
  }
});

test('promtool test rules: each alert fires on its firing history, with its labels, and stays silent on the others', () => {
  const tests = Object.entries(CASES).flatMap(([alert, { fire, quiet }]) => {
    const rule = rules.find((r) => r.alert === alert)!;
    const firing = {
      interval: '1m',
      name: `${alert} fires: ${fire.why}`,
      input_series: fire.series,
      alert_rule_test: [
        { eval_time: fire.at, alertname: alert, exp_alerts: [{ exp_labels: { ...rule.labels, ...fire.labels }, exp_annotations: rule.annotations }] },
      ],
    };
    const silent = quiet.map((q) => ({
      interval: '1m',
      name: `${alert} stays silent: ${q.why}`,
      input_series: q.series,
      alert_rule_test: [{ eval_time: q.at, alertname: alert, exp_alerts: [] }],
    }));
    return [firing, ...silent];
  });
  const unitTests = Yaml.stringify({ rule_files: ['alerts.rules.yaml'], evaluation_interval: '30s', tests });
  const { status, output } = promtool({ 'alerts.rules.yaml': rulesFile(env), 'alerts.test.yaml': unitTests }, (dir) => ['test', 'rules', path.join(dir, 'alerts.test.yaml')]);
  assert.is(status, 0, output);
  assert.match(output, 'SUCCESS');
});

test('promtool test rules fails a firing case that does not fire (the harness can fail)', () => {
  const rule = rules.find((r) => r.alert === 'ItemgenQueueAge')!;
  const unitTests = Yaml.stringify({
    rule_files: ['alerts.rules.yaml'],
    evaluation_interval: '30s',
    tests: [
      {
        interval: '1m',
        input_series: [oldest('gw-a', '0x30')],
        alert_rule_test: [{ eval_time: '20m', alertname: rule.alert, exp_alerts: [{ exp_labels: rule.labels, exp_annotations: rule.annotations }] }],
      },
    ],
  });
  const { status, output } = promtool({ 'alerts.rules.yaml': rulesFile(env), 'alerts.test.yaml': unitTests }, (dir) => ['test', 'rules', path.join(dir, 'alerts.test.yaml')]);
  assert.is.not(status, 0, output);
  assert.match(output, 'ItemgenQueueAge');
});

test.run();
