// The alerts an operator is paged or warned by: the one source of their rules. The cdk8s chart
// applies them as Google Managed Prometheus GlobalRules (monitoring.ts), `npm run synth` writes the
// same groups as a plain Prometheus rules file (k8s/dist/prometheus/<env>.rules.yaml) that
// `promtool check rules` and `promtool test rules` read (test/monitoring/alerts.test.ts), and the
// README's "Alerts and dashboards" table says what each one means and what to do.
//
// The series they read: the gateway's (Cloud Run, through the collector sidecar, any instance tells
// the database-wide numbers), the runners' and RabbitMQ's (PodMonitoring jobs `runner` and
// `rabbitmq`), and GKE's managed kube-state-metrics (restarts, the runner HPA KEDA makes).
import { Yaml } from 'cdk8s';
import type { Environment } from '../infra/environments.ts';
import { topologyFor } from '../src/queue/rabbitmq.ts';

export type Severity = 'page' | 'warning';

export interface AlertRule {
  alert: string;
  expr: string;
  /** How long the condition must hold before the alert fires. */
  for: string;
  labels: { severity: Severity };
  /** Plain text, no templates: what promtool's tests expect is then the rule's own text. */
  annotations: { summary: string; runbook: string };
}

export interface AlertGroup {
  name: string;
  interval: string;
  rules: AlertRule[];
}

/** The PodMonitoring names, which Managed Prometheus gives the scraped series as their `job`. */
export const SCRAPE_JOBS = { runner: 'runner', rabbitmq: 'rabbitmq' } as const;

/** The HorizontalPodAutoscaler KEDA makes for the ScaledObject `runner` (autoscaling.ts). */
export const RUNNER_HPA = 'keda-hpa-runner';


/** Seconds the oldest pending generation may wait before it is an incident. */
export const QUEUE_AGE_LIMIT_S = 900;
/**
 * Seconds a generation may wait with no runner up before that is an incident: runners scale from
 * zero, and a GPU node, its driver and the model copy take minutes to come.
 */
export const NO_RUNNER_LIMIT_S = 600;

const rule = (alert: string, severity: Severity, expr: string, forDuration: string, summary: string): AlertRule => ({
  alert,
  expr,
  for: forDuration,
  labels: { severity },
  annotations: { summary, runbook: `README.md, Alerts and dashboards: ${alert}` },
});

export function alertGroups(env: Environment): AlertGroup[] {
  const ns = env.kubernetes.namespace;
  const deadQueue = topologyFor(env.amqpPrefix).deadQueue;
  const oldestPending = 'max(itemgen_oldest_pending_generation_age_seconds)';
  return [
    {
      name: 'itemgen-queue',
      interval: '30s',
      rules: [
        rule(
          'ItemgenQueueAge',
          'page',
          `${oldestPending} > ${QUEUE_AGE_LIMIT_S}`,
          '5m',
          `A generation has waited more than ${QUEUE_AGE_LIMIT_S / 60} minutes for a runner: the runners do not keep up.`,
        ),
        rule(
          'ItemgenNoRunnerWhileJobsWait',
          'page',
          // `up` counts the runners that answer their scrape; with none at all there is no series.
          `${oldestPending} > ${NO_RUNNER_LIMIT_S} unless on() sum(up{job="${SCRAPE_JOBS.runner}"}) > 0`,
          '2m',
          `Generations have waited more than ${NO_RUNNER_LIMIT_S / 60} minutes and no runner is up.`,
        ),
        rule(
          'ItemgenGatewayMetricsAbsent',
          'warning',
          // The alerts above read the gateway's series: without them they cannot fire at all.
          'absent(itemgen_oldest_pending_generation_age_seconds)',
          '10m',
          "No gateway series has arrived for 10 minutes: the queue alerts are blind (the gateway or its collector sidecar is down).",
        ),
        rule(
          'ItemgenDeadLetters',
          'warning',
          'sum(increase(itemgen_generations_dead_lettered_total[30m])) > 0',
          '0m',
          'Generations were given up as dead letters (delivered too often without finishing, or unreadable).',
        ),
        rule(
          'ItemgenDeadLettersUnhandled',
          'page',
          // The gateway consumes the dead-letter queue at once; messages left in it mean no gateway does.
          `max(rabbitmq_detailed_queue_messages{queue="${deadQueue}"}) > 0`,
          '15m',
          'Dead-lettered messages stay in the dead-letter queue: no gateway fails their generations.',
        ),
      ],
    },
    {
      name: 'itemgen-runners',
      interval: '30s',
      rules: [
        rule(
          'ItemgenFailureRatio',
          'page',
          // At least ten settled jobs, so that one failure in a quiet hour is not an incident.
          `sum(rate(itemgen_runner_jobs_total{outcome="failed"}[15m])) / sum(rate(itemgen_runner_jobs_total{outcome=~"completed|failed"}[15m])) > 0.1` +
            ` and on() sum(increase(itemgen_runner_jobs_total{outcome=~"completed|failed"}[15m])) >= 10`,
          '5m',
          'More than 10% of the generations runners settled in the last 15 minutes failed.',
        ),
        rule(
          'ItemgenCrashLooping',
          'page',
          `max by (pod, container) (increase(kube_pod_container_status_restarts_total{namespace="${ns}"}[15m])) > 2`,
          '5m',
          'A container of itemgen restarted more than twice in 15 minutes.',
        ),
        rule(
          'ItemgenGpuPoolAtMax',
          'warning',
          // One runner per GPU node: the runners' HPA at its maximum is the GPU pool at its maximum.
          `max(kube_horizontalpodautoscaler_status_desired_replicas{namespace="${ns}", horizontalpodautoscaler="${RUNNER_HPA}"})` +
            ` >= max(kube_horizontalpodautoscaler_spec_max_replicas{namespace="${ns}", horizontalpodautoscaler="${RUNNER_HPA}"})`,
          '30m',
          'The runners (one per GPU node) have been at their maximum for 30 minutes: no more GPUs can come.',
        ),
      ],
    },
    {
      name: 'itemgen-webhooks',
      interval: '1m',
      rules: [
        rule(
          'ItemgenWebhookFailures',
          'warning',
          `sum(rate(itemgen_webhook_deliveries_total{outcome=~"retrying|failed|gave_up"}[30m])) / sum(rate(itemgen_webhook_deliveries_total[30m])) > 0.5`,
          '15m',
          'More than half of the webhook attempts in the last 30 minutes did not deliver.',
        ),
      ],
    },
  ];
}

/** The groups as a Prometheus rules file, for promtool and for any Prometheus besides Google's. */
export function rulesFile(env: Environment): string {
  return Yaml.stringify({ groups: alertGroups(env) });
}
