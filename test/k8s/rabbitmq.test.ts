import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { serviceAccountEmail } from '../../infra/environments.ts';
import { AMQPS_PORT } from '../../infra/bootstrap.ts';
import { rabbitmqSecret, rabbitmqTlsSecret, runnerAmqpHost } from '../../k8s/secrets.ts';
import { container, eachEnvironment, envOf, ofKind, one } from '../helpers/manifests.ts';

const byName = (obj: { metadata: { name: string } }) => obj.metadata.name;

test('a StatefulSet of 3 nodes in prod (quorum queues), 1 in dev, on the official image without management', () => {
  const replicas: Record<string, number> = {};
  for (const [env, objects] of eachEnvironment()) {
    const sts = one(objects, 'StatefulSet', 'rabbitmq');
    replicas[env.name] = sts.spec.replicas;
    assert.is(sts.spec.replicas, env.rabbitmq.replicas);
    assert.is(sts.spec.serviceName, 'rabbitmq-headless');
    const broker = container(sts, 'rabbitmq');
    assert.match(broker.image, /\/library\/rabbitmq:3\.13\.\d+@sha256:[0-9a-f]{64}$/);
    assert.not.match(broker.image, /management/);
  }
  assert.equal(replicas, { dev: 1, prod: 3 });
});

test('each node keeps its data on its own persistent volume claim', () => {
  for (const [env, objects] of eachEnvironment()) {
    const sts = one(objects, 'StatefulSet', 'rabbitmq');
    assert.equal(sts.spec.volumeClaimTemplates, [
      { metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: env.rabbitmq.storage } } } },
    ]);
    assert.ok(container(sts, 'rabbitmq').volumeMounts.some((m: any) => m.name === 'data' && m.mountPath === '/var/lib/rabbitmq'));
  }
});

test('readiness and liveness probes run the diagnostics CLI with generous timeouts', () => {
  for (const [, objects] of eachEnvironment()) {
    const broker = container(one(objects, 'StatefulSet', 'rabbitmq'), 'rabbitmq');
    assert.equal(broker.readinessProbe.exec.command, ['rabbitmq-diagnostics', '-q', 'check_port_connectivity']);
    assert.equal(broker.livenessProbe.exec.command, ['rabbitmq-diagnostics', '-q', 'ping']);
    for (const probe of [broker.readinessProbe, broker.livenessProbe]) assert.ok(probe.timeoutSeconds >= 10, 'an Erlang CLI call needs seconds');
  }
});

test('resource requests equal limits, from the environment settings', () => {
  const expected = { dev: { cpu: '500m', memory: '1024Mi' }, prod: { cpu: '1', memory: '2048Mi' } };
  for (const [env, objects] of eachEnvironment()) {
    const { resources } = container(one(objects, 'StatefulSet', 'rabbitmq'), 'rabbitmq');
    assert.equal(resources.requests, expected[env.name]);
    assert.equal(resources.limits, expected[env.name]);
  }
});

test('user, password and Erlang cookie come from the bootstrap Secret by reference', () => {
  for (const [, objects] of eachEnvironment()) {
    const env = envOf(container(one(objects, 'StatefulSet', 'rabbitmq'), 'rabbitmq'));
    const ref = (key: string) => ({ valueFrom: { secretKeyRef: { name: rabbitmqSecret.name, key } } });
    assert.equal(env.RABBITMQ_DEFAULT_USER, ref(rabbitmqSecret.username));
    assert.equal(env.RABBITMQ_DEFAULT_PASS, ref(rabbitmqSecret.password));
    assert.equal(env.RABBITMQ_ERLANG_COOKIE, ref(rabbitmqSecret.erlangCookie));
    assert.is(env.RABBITMQ_NODENAME?.value, 'rabbit@$(POD_NAME).rabbitmq-headless.itemgen.svc.cluster.local');
    assert.equal(ofKind(objects, 'Secret'), [], 'secrets are created at bootstrap, never synthesized');
  }
});

test('clustering: k8s peer discovery through the headless Service, with exactly the RBAC it needs', () => {
  for (const [env, objects] of eachEnvironment()) {
    const conf: string = one(objects, 'ConfigMap', 'rabbitmq-config').data['rabbitmq.conf'];
    assert.match(conf, /^cluster_formation\.peer_discovery_backend = k8s$/m);
    assert.match(conf, /^cluster_formation\.k8s\.service_name = rabbitmq-headless$/m);
    assert.match(conf, /^cluster_formation\.k8s\.address_type = hostname$/m);
    assert.is(one(objects, 'ConfigMap', 'rabbitmq-config').data.enabled_plugins, '[rabbitmq_peer_discovery_k8s,rabbitmq_management,rabbitmq_prometheus].\n');

    const headless = one(objects, 'Service', 'rabbitmq-headless');
    assert.is(headless.spec.clusterIP, 'None');
    assert.is(headless.spec.publishNotReadyAddresses, true);
    assert.equal(headless.spec.selector, { 'app.kubernetes.io/name': 'rabbitmq' });

    const sa = one(objects, 'ServiceAccount', env.kubernetes.rabbitmqServiceAccount);
    assert.is(sa.metadata.annotations['iam.gke.io/gcp-service-account'], serviceAccountEmail(env, 'rabbitmq'));
    assert.is(one(objects, 'StatefulSet', 'rabbitmq').spec.template.spec.serviceAccountName, env.kubernetes.rabbitmqServiceAccount);
    assert.equal(one(objects, 'Role', 'rabbitmq-peer-discovery').rules, [
      { apiGroups: [''], resources: ['endpoints'], resourceNames: ['rabbitmq-headless'], verbs: ['get'] },
    ]);
    const binding = one(objects, 'RoleBinding', 'rabbitmq-peer-discovery');
    assert.equal(binding.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'rabbitmq-peer-discovery' });
    assert.equal(
      binding.subjects.map((s: any) => [s.kind, s.name]),
      [['ServiceAccount', env.kubernetes.rabbitmqServiceAccount]],
    );
  }
});

test('Cloud Run reaches the broker through an internal load balancer at the reserved address, AMQPS (5671) only, from its range only', () => {
  for (const [env, objects] of eachEnvironment()) {
    const lb = one(objects, 'Service', 'rabbitmq');
    assert.is(lb.spec.type, 'LoadBalancer');
    assert.is(lb.metadata.annotations['networking.gke.io/load-balancer-type'], 'Internal');
    assert.is(lb.spec.loadBalancerIP, env.network.rabbitmqAddress);
    assert.equal(lb.spec.ports, [{ name: 'amqps', port: AMQPS_PORT, targetPort: AMQPS_PORT }]);
    assert.equal(lb.spec.loadBalancerSourceRanges, [env.network.cloudRunCidr]);
    assert.is(lb.spec.externalTrafficPolicy, 'Local', 'the client address must survive for the NetworkPolicy');
    assert.equal(lb.spec.selector, { 'app.kubernetes.io/name': 'rabbitmq' });
  }
});

test('the runners reach plaintext AMQP (5672) on a ClusterIP Service inside the cluster, the name their URL carries', () => {
  for (const [env, objects] of eachEnvironment()) {
    const amqp = one(objects, 'Service', 'rabbitmq-amqp');
    assert.is(amqp.spec.type, 'ClusterIP');
    assert.equal(amqp.spec.ports, [{ name: 'amqp', port: 5672, targetPort: 5672 }]);
    assert.equal(amqp.spec.selector, { 'app.kubernetes.io/name': 'rabbitmq' });
    assert.is(runnerAmqpHost(env), 'rabbitmq-amqp.itemgen.svc.cluster.local');
    const with5672 = ofKind(objects, 'Service').filter((s) => s.spec.ports.some((p: any) => p.port === 5672));
    assert.equal(with5672.map((s) => [s.metadata.name, s.spec.type ?? 'ClusterIP']).sort(), [
      ['rabbitmq-amqp', 'ClusterIP'],
      ['rabbitmq-headless', 'ClusterIP'],
    ]);
  }
});

test('TLS listener on 5671 from the rabbitmq-tls Secret: TLS 1.2+, password clients (no client certificates)', () => {
  for (const [, objects] of eachEnvironment()) {
    const conf: string = one(objects, 'ConfigMap', 'rabbitmq-config').data['rabbitmq.conf'];
    const lines = new Set(conf.split('\n'));
    for (const line of [
      'listeners.tcp.default = 5672',
      'listeners.ssl.default = 5671',
      'ssl_options.cacertfile = /etc/rabbitmq-tls/ca.crt',
      'ssl_options.certfile = /etc/rabbitmq-tls/tls.crt',
      'ssl_options.keyfile = /etc/rabbitmq-tls/tls.key',
      'ssl_options.verify = verify_none',
      'ssl_options.fail_if_no_peer_cert = false',
      'ssl_options.versions.1 = tlsv1.3',
      'ssl_options.versions.2 = tlsv1.2',
    ]) {
      assert.ok(lines.has(line), `rabbitmq.conf lacks: ${line}`);
    }
    assert.not.match(conf, /tlsv1(\.1)?$/m, 'no TLS 1.0 or 1.1');

    const sts = one(objects, 'StatefulSet', 'rabbitmq');
    const broker = container(sts, 'rabbitmq');
    assert.ok(broker.ports.some((p: any) => p.containerPort === AMQPS_PORT && p.name === 'amqps'));
    const mount = broker.volumeMounts.find((m: any) => m.mountPath === '/etc/rabbitmq-tls');
    assert.ok(mount, 'the TLS Secret is mounted');
    assert.is(mount.readOnly, true);
    const volume = sts.spec.template.spec.volumes.find((v: any) => v.name === mount.name);
    assert.is(volume.secret.secretName, rabbitmqTlsSecret.name);
    assert.is(rabbitmqTlsSecret.name, 'rabbitmq-tls');
    assert.equal(
      volume.secret.items.map((i: any) => i.key).sort(),
      [rabbitmqTlsSecret.ca, rabbitmqTlsSecret.cert, rabbitmqTlsSecret.key].sort(),
    );
    assert.equal([rabbitmqTlsSecret.ca, rabbitmqTlsSecret.cert, rabbitmqTlsSecret.key], ['ca.crt', 'tls.crt', 'tls.key']);
    // The broker runs as 999 with fsGroup 999: group-readable, nobody else.
    assert.is(volume.secret.defaultMode, 0o440);
  }
});

test('the management API stays inside the cluster: only a ClusterIP Service has port 15672, the one user cannot administer, one LoadBalancer (AMQPS)', () => {
  for (const [, objects] of eachEnvironment()) {
    const withManagement = ofKind(objects, 'Service').filter((s) => JSON.stringify(s.spec.ports).includes('15672'));
    assert.equal(withManagement.map((s) => [s.metadata.name, s.spec.type]), [['rabbitmq-management', 'ClusterIP']]);
    assert.equal(one(objects, 'Service', 'rabbitmq-management').spec.ports, [{ name: 'management', port: 15672, targetPort: 15672 }]);
    const conf: string = one(objects, 'ConfigMap', 'rabbitmq-config').data['rabbitmq.conf'];
    assert.match(conf, /^default_user_tags\.administrator = false$/m);
    assert.match(conf, /^default_user_tags\.monitoring = true$/m);
    assert.equal(
      ofKind(objects, 'Service')
        .filter((s) => s.spec.type === 'LoadBalancer' || s.spec.type === 'NodePort')
        .map(byName),
      ['rabbitmq'],
    );
  }
});

test('disruptions take one node at a time; prod spreads nodes over machines and over zones', () => {
  const spread: Record<string, unknown> = {};
  for (const [env, objects] of eachEnvironment()) {
    const pdb = one(objects, 'PodDisruptionBudget', 'rabbitmq');
    assert.equal(pdb.spec, { maxUnavailable: 1, selector: { matchLabels: { 'app.kubernetes.io/name': 'rabbitmq' } } });
    const pod = one(objects, 'StatefulSet', 'rabbitmq').spec.template.spec;
    spread[env.name] = pod.topologySpreadConstraints;
    if (env.rabbitmq.replicas > 1) {
      assert.equal(pod.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution, [
        { labelSelector: { matchLabels: { 'app.kubernetes.io/name': 'rabbitmq' } }, topologyKey: 'kubernetes.io/hostname' },
      ]);
    } else {
      assert.is(pod.affinity, undefined);
    }
  }
  // The cluster is regional (infra/cluster.ts: location = region, node pools in every zone), so
  // there are zones to spread over; a zone down costs one quorum member, never two.
  assert.equal(spread, {
    dev: undefined,
    prod: [
      {
        maxSkew: 1,
        minDomains: 3,
        topologyKey: 'topology.kubernetes.io/zone',
        whenUnsatisfiable: 'DoNotSchedule',
        nodeTaintsPolicy: 'Honor',
        labelSelector: { matchLabels: { 'app.kubernetes.io/name': 'rabbitmq' } },
      },
    ],
  });
});

test('quorum queue membership is reconciled up to one member per node (a node back, or replaced, gets its members again)', () => {
  for (const [env, objects] of eachEnvironment()) {
    const conf: string = one(objects, 'ConfigMap', 'rabbitmq-config').data['rabbitmq.conf'];
    assert.match(conf, /^quorum_queue\.continuous_membership_reconciliation\.enabled = true$/m);
    assert.match(conf, new RegExp(`^quorum_queue\\.continuous_membership_reconciliation\\.target_group_size = ${env.rabbitmq.replicas}$`, 'm'));
    // A node gone for a while is expected back with its disk: its members are kept, not removed.
    assert.match(conf, /^quorum_queue\.continuous_membership_reconciliation\.auto_remove = false$/m);
  }
});

test('every node exports the definitions hourly onto its own volume, a week of them kept', () => {
  for (const [, objects] of eachEnvironment()) {
    const sts = one(objects, 'StatefulSet', 'rabbitmq');
    const broker = container(sts, 'rabbitmq');
    const backup = container(sts, 'definitions-backup');
    assert.is(backup.image, broker.image);
    const script: string = backup.command.at(-1);
    assert.equal(backup.command.slice(0, 2), ['sh', '-c']);
    assert.match(script, /rabbitmqctl -q export_definitions "\$tmp"/);
    assert.match(script, /\/var\/lib\/rabbitmq\/definitions-backup/);
    assert.match(script, /tail -n \+169/);
    assert.match(script, /sleep 3600/);
    assert.match(script, /trap 'exit 0' TERM/, 'stops at once with the pod, not at the end of the grace period');
    // It talks to the node of its own pod, with the broker's node name and cookie.
    const vars = envOf(backup);
    const brokerVars = envOf(broker);
    for (const name of ['POD_NAME', 'RABBITMQ_USE_LONGNAME', 'RABBITMQ_NODENAME', 'RABBITMQ_ERLANG_COOKIE']) {
      assert.equal(vars[name], brokerVars[name], name);
    }
    assert.ok(backup.volumeMounts.some((m: any) => m.name === 'data' && m.mountPath === '/var/lib/rabbitmq'));
    assert.is(sts.spec.template.metadata.annotations['kubectl.kubernetes.io/default-container'], 'rabbitmq');
  }
});

test.run();
