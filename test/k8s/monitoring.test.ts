// What Managed Prometheus scrapes and evaluates (k8s/monitoring.ts): each PodMonitoring selects the
// pods it means on a port their container really has, RabbitMQ serves its prometheus plugin there,
// and the GlobalRules are exactly the rule groups of k8s/alerts.ts, as the rules file promtool
// reads has them.
import path from 'node:path';
import { Yaml } from 'cdk8s';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { alertGroups } from '../../k8s/alerts.ts';
import { eachEnvironment, one, synth, type Manifest } from '../helpers/manifests.ts';

/** The container of a workload that declares a port of this name, and the port. */
function portNamed(workload: Manifest, name: string): { container: string; port: number } {
  const found = (workload.spec.template.spec.containers as any[]).flatMap((c) =>
    (c.ports ?? []).filter((p: any) => p.name === name).map((p: any) => ({ container: c.name as string, port: p.containerPort as number })),
  );
  assert.is(found.length, 1, `${workload.metadata.name}: port ${name}`);
  return found[0]!;
}

test('the runners are scraped on their health port, whose /metrics the runner serves', () => {
  for (const [, objects] of eachEnvironment()) {
    const monitoring = one(objects, 'PodMonitoring', 'runner');
    const runner = one(objects, 'Deployment', 'runner');
    assert.equal(monitoring.spec.selector, runner.spec.selector);
    assert.equal(monitoring.spec.endpoints, [{ port: 'health', path: '/metrics', interval: '30s' }]);
    assert.equal(portNamed(runner, 'health'), { container: 'runner', port: 8081 });
  }
});

test('RabbitMQ is scraped on its prometheus plugin: totals, and per-queue coarse counts for the dead-letter alert', () => {
  for (const [, objects] of eachEnvironment()) {
    const monitoring = one(objects, 'PodMonitoring', 'rabbitmq');
    const rabbitmq = one(objects, 'StatefulSet', 'rabbitmq');
    assert.equal(monitoring.spec.selector, rabbitmq.spec.selector);
    assert.equal(monitoring.spec.endpoints, [
      { port: 'prometheus', path: '/metrics', interval: '30s' },
      { port: 'prometheus', path: '/metrics/detailed', params: { family: ['queue_coarse_metrics'] }, interval: '30s' },
    ]);
    assert.equal(portNamed(rabbitmq, 'prometheus'), { container: 'rabbitmq', port: 15692 });
    const config = one(objects, 'ConfigMap', 'rabbitmq-config').data;
    assert.match(config.enabled_plugins, /rabbitmq_prometheus/);
    assert.match(config['rabbitmq.conf'], /^prometheus\.tcp\.port = 15692$/m);
  }
});

test('the GlobalRules hold the alert groups of k8s/alerts.ts, the same as the committed rules file', () => {
  for (const [env, objects] of eachEnvironment()) {
    const rules = one(objects, 'GlobalRules', 'itemgen-alerts');
    assert.is(rules.apiVersion, 'monitoring.googleapis.com/v1');
    assert.equal(rules.spec.groups, JSON.parse(JSON.stringify(alertGroups(env))));
    const file = Yaml.load(path.join(synth().dir, 'prometheus', `${env.name}.rules.yaml`))[0] as { groups: unknown };
    assert.equal(file.groups, rules.spec.groups);
  }
});

test('the GPU-pool alert’s premise: one runner per GPU node, as many runners at most as the pool has nodes', () => {
  for (const [env, objects] of eachEnvironment()) {
    // ItemgenGpuPoolAtMax reads the runners' HPA: it is the pool only while these hold.
    assert.is(env.runner.maxReplicas, env.gke.gpuMaxNodes, env.name);
    assert.is(one(objects, 'ScaledObject', 'runner').spec.maxReplicaCount, env.gke.gpuMaxNodes);
    const runner = one(objects, 'Deployment', 'runner').spec.template.spec.containers.find((c: any) => c.name === 'runner');
    assert.is(runner.resources.limits['nvidia.com/gpu'], '1');
  }
});

test.run();
