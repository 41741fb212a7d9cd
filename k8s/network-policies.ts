// Who may open connections to whom in the namespace (Dataplane V2 enforces it). Nothing gets in
// unless a policy below lets it: plaintext AMQP from the runners, AMQP over TLS from Cloud Run's
// egress range (the gateway, through the internal load balancer); the management API from KEDA's operator only (it
// reads the queue length); Erlang clustering between RabbitMQ nodes only; the metrics ports (the
// runners' health port, RabbitMQ's prometheus plugin) from Managed Prometheus' collectors only. The
// runners accept no other connections: their health port is probed by the kubelet, and traffic from
// a pod's own node is always allowed by NetworkPolicy semantics, so no rule is needed for the
// probes. Egress is not restricted.
import * as kplus from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import type { Environment } from '../infra/environments.ts';
import { AMQP_PORT, AMQPS_PORT, DIST_PORT, EPMD_PORT, MANAGEMENT_PORT, PROMETHEUS_PORT } from './rabbitmq.ts';
import { HEALTH_PORT } from './runner.ts';

/** Where the KEDA Helm chart runs its operator, and the operator pods' label. */
const KEDA_NAMESPACE = 'keda';
const KEDA_OPERATOR_LABELS = { 'app.kubernetes.io/name': 'keda-operator' };
/** Where GKE runs Managed Prometheus' collectors (a DaemonSet), and their pods' label. */
const GMP_NAMESPACE = 'gmp-system';
const GMP_COLLECTOR_LABELS = { 'app.kubernetes.io/name': 'collector' };

export interface NetworkPoliciesProps {
  env: Environment;
  rabbitmqPods: Record<string, string>;
  runnerPods: Record<string, string>;
}

export class NetworkPolicies extends Construct {
  constructor(scope: Construct, id: string, props: NetworkPoliciesProps) {
    super(scope, id);
    const rabbitmq = kplus.Pods.select(this, 'rabbitmq', { labels: props.rabbitmqPods });
    const runners = kplus.Pods.select(this, 'runners', { labels: props.runnerPods });

    new kplus.NetworkPolicy(this, 'default-deny', {
      metadata: { name: 'default-deny-ingress' },
      selector: kplus.Pods.all(this, 'all'),
      ingress: { default: kplus.NetworkPolicyTrafficDefault.DENY },
    });

    // Plaintext AMQP from the runners alone (inside the cluster); AMQP over TLS from Cloud Run's
    // range alone (through the internal load balancer).
    const amqp = new kplus.NetworkPolicy(this, 'amqp', { metadata: { name: 'rabbitmq-amqp' }, selector: rabbitmq });
    amqp.addIngressRule(runners, [kplus.NetworkPolicyPort.tcp(AMQP_PORT)]);
    const amqps = new kplus.NetworkPolicy(this, 'amqps', { metadata: { name: 'rabbitmq-amqps' }, selector: rabbitmq });
    amqps.addIngressRule(kplus.NetworkPolicyIpBlock.ipv4(this, 'cloud-run', props.env.network.cloudRunCidr), [
      kplus.NetworkPolicyPort.tcp(AMQPS_PORT),
    ]);

    const management = new kplus.NetworkPolicy(this, 'management', { metadata: { name: 'rabbitmq-management' }, selector: rabbitmq });
    management.addIngressRule(
      kplus.Pods.select(this, 'keda-operator', {
        labels: KEDA_OPERATOR_LABELS,
        namespaces: kplus.Namespaces.select(this, 'keda', { names: [KEDA_NAMESPACE] }),
      }),
      [kplus.NetworkPolicyPort.tcp(MANAGEMENT_PORT)],
    );

    const collectors = kplus.Pods.select(this, 'gmp-collectors', {
      labels: GMP_COLLECTOR_LABELS,
      namespaces: kplus.Namespaces.select(this, 'gmp-system', { names: [GMP_NAMESPACE] }),
    });
    const rabbitmqMetrics = new kplus.NetworkPolicy(this, 'rabbitmq-metrics', { metadata: { name: 'rabbitmq-metrics' }, selector: rabbitmq });
    rabbitmqMetrics.addIngressRule(collectors, [kplus.NetworkPolicyPort.tcp(PROMETHEUS_PORT)]);
    const runnerMetrics = new kplus.NetworkPolicy(this, 'runner-metrics', { metadata: { name: 'runner-metrics' }, selector: runners });
    runnerMetrics.addIngressRule(collectors, [kplus.NetworkPolicyPort.tcp(HEALTH_PORT)]);

    const cluster = new kplus.NetworkPolicy(this, 'cluster', { metadata: { name: 'rabbitmq-cluster' }, selector: rabbitmq });
    cluster.addIngressRule(rabbitmq, [kplus.NetworkPolicyPort.tcp(EPMD_PORT), kplus.NetworkPolicyPort.tcp(DIST_PORT)]);
  }
}
