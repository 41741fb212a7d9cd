// One environment's manifests: the namespace, what CI's deploy identity may do in it, and, in it,
// RabbitMQ, the runners, their autoscaling, the network policies and what Managed Prometheus scrapes and alerts on, each one construct. Everything an environment differs in comes from
// infra/environments.ts.
import { ApiObject, Chart, JsonPatch } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import type { Construct } from 'constructs';
import type { Environment } from '../infra/environments.ts';
import { RunnerAutoscaling } from './autoscaling.ts';
import { DeployerRbac } from './deployer-rbac.ts';
import { Monitoring } from './monitoring.ts';
import { NetworkPolicies } from './network-policies.ts';
import { PEER_DISCOVERY_RULES, PROMETHEUS_PORT_NAME, RabbitMq } from './rabbitmq.ts';
import { HEALTH_PORT_NAME, Runner } from './runner.ts';

export interface ItemgenChartProps {
  env: Environment;
  /** Tag of the runner image. */
  runnerImageTag: string;
}

export class ItemgenChart extends Chart {
  constructor(scope: Construct, id: string, props: ItemgenChartProps) {
    const { env } = props;
    super(scope, id, {
      namespace: env.kubernetes.namespace,
      labels: { 'app.kubernetes.io/part-of': 'itemgen' },
      // Every object is named explicitly; names never carry a hash of the construct path.
      disableResourceNameHashes: true,
    });

    const namespace = new kplus.Namespace(this, 'namespace', {
      metadata: {
        name: env.kubernetes.namespace,
        // Every pod here runs as non-root, without privileges or capabilities; the API refuses any
        // pod that does not.
        labels: { 'pod-security.kubernetes.io/enforce': 'restricted' },
      },
    });
    // The chart's namespace goes on every object; a Namespace itself has none.
    ApiObject.of(namespace).addJsonPatch(JsonPatch.remove('/metadata/namespace'));
    // Right after the Namespace: an apply sets what CI may do before the objects it applies.
    new DeployerRbac(this, 'deployer-rbac', { env, heldRules: PEER_DISCOVERY_RULES });
    const rabbitmq = new RabbitMq(this, 'rabbitmq', { env });
    const runner = new Runner(this, 'runner', { env, imageTag: props.runnerImageTag });
    new RunnerAutoscaling(this, 'autoscaling', { env, runners: runner.deployment });
    new NetworkPolicies(this, 'network-policies', { env, rabbitmqPods: rabbitmq.podLabels, runnerPods: runner.podLabels });
    new Monitoring(this, 'monitoring', {
      env,
      runnerPods: runner.podLabels,
      rabbitmqPods: rabbitmq.podLabels,
      runnerMetricsPort: HEALTH_PORT_NAME,
      rabbitmqMetricsPort: PROMETHEUS_PORT_NAME,
    });
  }
}
