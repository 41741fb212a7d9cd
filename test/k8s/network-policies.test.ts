import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { eachEnvironment, ofKind, one, type Manifest } from '../helpers/manifests.ts';

const rabbitmqPods = { matchLabels: { 'app.kubernetes.io/name': 'rabbitmq' } };
const runnerPods = { matchLabels: { 'app.kubernetes.io/name': 'runner' } };

/** Each ingress rule of a policy as [peer, ports] pairs, one pair per peer. */
function admitted(policy: Manifest): [unknown, unknown][] {
  return (policy.spec.ingress ?? []).flatMap((rule: any) => rule.from.map((peer: unknown) => [peer, rule.ports]));
}

test('ingress is denied to every pod of the namespace unless a policy admits it', () => {
  for (const [, objects] of eachEnvironment()) {
    const deny = one(objects, 'NetworkPolicy', 'default-deny-ingress');
    assert.equal(deny.spec, { podSelector: {}, policyTypes: ['Ingress'] });
    for (const policy of ofKind(objects, 'NetworkPolicy')) {
      assert.equal(policy.spec.policyTypes, ['Ingress'], `${policy.metadata.name} restricts egress`);
    }
  }
});

test('plaintext AMQP (5672) is admitted from the runners alone; AMQPS (5671) from the Cloud Run range alone', () => {
  for (const [env, objects] of eachEnvironment()) {
    const amqp = one(objects, 'NetworkPolicy', 'rabbitmq-amqp');
    assert.equal(amqp.spec.podSelector, rabbitmqPods);
    assert.equal(admitted(amqp), [[{ podSelector: runnerPods }, [{ port: 5672, protocol: 'TCP' }]]]);
    const amqps = one(objects, 'NetworkPolicy', 'rabbitmq-amqps');
    assert.equal(amqps.spec.podSelector, rabbitmqPods);
    assert.equal(admitted(amqps), [[{ ipBlock: { cidr: env.network.cloudRunCidr } }, [{ port: 5671, protocol: 'TCP' }]]]);
    const ports = ofKind(objects, 'NetworkPolicy').flatMap((p) => admitted(p).flatMap(([, ps]: any) => ps.map((x: any) => x.port)));
    assert.is(ports.filter((p) => p === 5672).length, 1, 'one rule admits 5672');
    assert.is(ports.filter((p) => p === 5671).length, 1, 'one rule admits 5671');
  }
});

test('the management API is admitted from the KEDA operator alone', () => {
  for (const [, objects] of eachEnvironment()) {
    const management = one(objects, 'NetworkPolicy', 'rabbitmq-management');
    assert.equal(management.spec.podSelector, rabbitmqPods);
    assert.equal(admitted(management), [
      [
        {
          namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'keda' } },
          podSelector: { matchLabels: { 'app.kubernetes.io/name': 'keda-operator' } },
        },
        [{ port: 15672, protocol: 'TCP' }],
      ],
    ]);
  }
});

test('Erlang clustering ports are open between RabbitMQ nodes only', () => {
  for (const [, objects] of eachEnvironment()) {
    const cluster = one(objects, 'NetworkPolicy', 'rabbitmq-cluster');
    assert.equal(cluster.spec.podSelector, rabbitmqPods);
    assert.equal(admitted(cluster), [
      [
        { podSelector: rabbitmqPods },
        [
          { port: 4369, protocol: 'TCP' },
          { port: 25672, protocol: 'TCP' },
        ],
      ],
    ]);
  }
});

const gmpCollectors = {
  namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'gmp-system' } },
  podSelector: { matchLabels: { 'app.kubernetes.io/name': 'collector' } },
};

test('the metrics ports are admitted from Managed Prometheus’ collectors alone: runners 8081, RabbitMQ 15692', () => {
  for (const [, objects] of eachEnvironment()) {
    const runner = one(objects, 'NetworkPolicy', 'runner-metrics');
    assert.equal(runner.spec.podSelector, runnerPods);
    assert.equal(admitted(runner), [[gmpCollectors, [{ port: 8081, protocol: 'TCP' }]]]);
    const rabbitmq = one(objects, 'NetworkPolicy', 'rabbitmq-metrics');
    assert.equal(rabbitmq.spec.podSelector, rabbitmqPods);
    assert.equal(admitted(rabbitmq), [[gmpCollectors, [{ port: 15692, protocol: 'TCP' }]]]);
  }
});

test('only the collectors connect to the runners, and no policy admits a whole range but Cloud Run', () => {
  for (const [env, objects] of eachEnvironment()) {
    const policies = ofKind(objects, 'NetworkPolicy');
    const selectingRunners = policies.filter((p) => JSON.stringify(p.spec.podSelector) === JSON.stringify(runnerPods));
    assert.equal(selectingRunners.map((p) => p.metadata.name), ['runner-metrics']);
    const blocks = policies.flatMap(admitted).flatMap(([peer]: any) => (peer.ipBlock ? [peer.ipBlock.cidr] : []));
    assert.equal(blocks, [env.network.cloudRunCidr]);
  }
});

test.run();
