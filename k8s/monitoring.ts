// What Google Managed Prometheus (GMP, the cluster's managed collection, infra/cluster.ts) scrapes
// here and which alerts it evaluates: a PodMonitoring for the runners' /metrics, one for RabbitMQ's
// `rabbitmq_prometheus` plugin (its totals, and per queue the coarse counts the dead-letter alert
// reads), and the alert rules of alerts.ts as one GlobalRules object.
//
// GlobalRules rather than the namespaced Rules: GMP scopes a Rules object's queries to its own
// cluster and namespace, and the gateway's series come from Cloud Run (the collector sidecar,
// infra/gateway-service.ts), with neither; two alerts join them with the runners'. GlobalRules see
// every series of the project, and each environment is its own project.
//
// The GMP kinds are written as small typed constructs over ApiObject with the CRDs' shapes
// (monitoring.googleapis.com/v1), for want of their CRD files to import offline; test/k8s checks
// the synthesized objects' fields.
import { ApiObject, JsonPatch, type ApiObjectMetadata } from 'cdk8s';
import { Construct } from 'constructs';
import type { Environment } from '../infra/environments.ts';
import { alertGroups, SCRAPE_JOBS, type AlertGroup } from './alerts.ts';

const API_VERSION = 'monitoring.googleapis.com/v1';
/** How often series are scraped: fine enough for the 2-minute `for` of the shortest alert. */
const SCRAPE_INTERVAL = '30s';

export interface ScrapeEndpoint {
  /** The container port's name or number. */
  port: string | number;
  path?: string;
  interval: string;
  /** URL query parameters of the scrape. */
  params?: Record<string, string[]>;
}

export interface PodMonitoringSpec {
  selector: { matchLabels: Record<string, string> };
  endpoints: ScrapeEndpoint[];
}

export class PodMonitoring extends ApiObject {
  constructor(scope: Construct, id: string, props: { metadata: ApiObjectMetadata; spec: PodMonitoringSpec }) {
    super(scope, id, { apiVersion: API_VERSION, kind: 'PodMonitoring', ...props });
  }
}

/** Cluster-scoped: the chart's namespace is taken off. */
export class GlobalRules extends ApiObject {
  constructor(scope: Construct, id: string, props: { metadata: ApiObjectMetadata; spec: { groups: AlertGroup[] } }) {
    super(scope, id, { apiVersion: API_VERSION, kind: 'GlobalRules', ...props });
    this.addJsonPatch(JsonPatch.remove('/metadata/namespace'));
  }
}

/** The GlobalRules object's name: cluster-scoped, so the deployer may patch it by name only. */
export const GLOBAL_RULES_NAME = 'itemgen-alerts';

export interface MonitoringProps {
  env: Environment;
  runnerPods: Record<string, string>;
  rabbitmqPods: Record<string, string>;
  /** The runner container's port serving /metrics. */
  runnerMetricsPort: string;
  /** The RabbitMQ container's port of the prometheus plugin. */
  rabbitmqMetricsPort: string;
}

export class Monitoring extends Construct {
  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    // The PodMonitoring's name is the series' `job` label, which the alerts select on.
    new PodMonitoring(this, 'runner', {
      metadata: { name: SCRAPE_JOBS.runner },
      spec: {
        selector: { matchLabels: props.runnerPods },
        endpoints: [{ port: props.runnerMetricsPort, path: '/metrics', interval: SCRAPE_INTERVAL }],
      },
    });
    new PodMonitoring(this, 'rabbitmq', {
      metadata: { name: SCRAPE_JOBS.rabbitmq },
      spec: {
        selector: { matchLabels: props.rabbitmqPods },
        endpoints: [
          // Node and cluster totals (connections, channels, memory, messages in all queues).
          { port: props.rabbitmqMetricsPort, path: '/metrics', interval: SCRAPE_INTERVAL },
          // Ready and unacknowledged messages per queue, the dead-letter queue's among them; the
          // coarse family only, not every per-object metric.
          { port: props.rabbitmqMetricsPort, path: '/metrics/detailed', params: { family: ['queue_coarse_metrics'] }, interval: SCRAPE_INTERVAL },
        ],
      },
    });
    new GlobalRules(this, 'rules', { metadata: { name: GLOBAL_RULES_NAME }, spec: { groups: alertGroups(props.env) } });
  }
}
