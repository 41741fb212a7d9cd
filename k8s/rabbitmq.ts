// RabbitMQ as a StatefulSet: one node per replica (three in prod, so quorum queues survive the loss
// of one), each with its own persistent volume, clustered by the Kubernetes peer discovery plugin.
// Reached by the runners inside the cluster over plaintext AMQP (a ClusterIP Service), and by the
// gateway on Cloud Run through an internal load balancer at a fixed VPC address, AMQP over TLS only:
// that is where the traffic leaves the cluster for the VPC. The management API, the old system's public
// weak point, serves one reader: KEDA's operator, which needs the count of messages runners hold
// (AMQP reports only waiting ones). It is on a ClusterIP Service, admitted by NetworkPolicy from
// KEDA's operator alone, and the broker's one user has the `monitoring` tag, not `administrator`.
import { ApiObject, Duration, JsonPatch } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { AMQPS_PORT } from '../infra/bootstrap.ts';
import { serviceAccountEmail, type Environment } from '../infra/environments.ts';
import { cpu, mebibytes, memory, restrictedContainer, selectorLabels } from './common.ts';
import { mirroredFromDockerHub } from './images.ts';
import { rabbitmqSecret, rabbitmqTlsSecret, RUNNER_AMQP_SERVICE } from './secrets.ts';

export const AMQP_PORT = 5672;
/** AMQP over TLS: the only port of the internal load balancer (infra/bootstrap.ts, shared with the gateway's URL). */
export { AMQPS_PORT };
/** Erlang's port mapper and the inter-node distribution port: clustering traffic only. */
export const EPMD_PORT = 4369;
export const DIST_PORT = 25672;
/** The management HTTP API, read by KEDA for the queue's ready + unacknowledged messages. */
export const MANAGEMENT_PORT = 15672;
/** The rabbitmq_prometheus plugin's scrape port, read by Managed Prometheus (monitoring.ts). */
export const PROMETHEUS_PORT = 15692;
export const PROMETHEUS_PORT_NAME = 'prometheus';
/** The in-cluster Service in front of the management API. */
export const MANAGEMENT_SERVICE = 'rabbitmq-management';

/** The `rabbitmq` user and group of the official image. */
const RABBITMQ_UID = 999;
/**
 * The last release of the 3.13 series (the management plugin is enabled by our enabled_plugins, not
 * by a `-management` image), by digest (images.lock.json), pulled through the environment's mirror
 * of Docker Hub. Its peer discovery asks the
 * API for the headless Service's endpoints (the Role below); the 4.x series reworked Kubernetes
 * peer discovery, so moving to it means revisiting this construct, not only the tag.
 */
const IMAGE = 'rabbitmq:3.13.7';
const HEADLESS_SERVICE = 'rabbitmq-headless';
/** What peer discovery reads; the deployer holds it too, to be allowed to apply the Role (deployer-rbac.ts). */
export const PEER_DISCOVERY_RULES: kplus.k8s.PolicyRule[] = [
  { apiGroups: [''], resources: ['endpoints'], resourceNames: [HEADLESS_SERVICE], verbs: ['get'] },
];
const DATA_VOLUME = 'data';
/** Where the rabbitmq-tls Secret is mounted; not under /etc/rabbitmq, which the ConfigMap replaces. */
const TLS_DIR = '/etc/rabbitmq-tls';

export interface RabbitMqProps {
  env: Environment;
}

export class RabbitMq extends Construct {
  /** Labels of the RabbitMQ pods. */
  readonly podLabels = selectorLabels('rabbitmq');
  readonly statefulSet: kplus.StatefulSet;

  constructor(scope: Construct, id: string, props: RabbitMqProps) {
    super(scope, id);
    const { env } = props;
    const namespace = env.kubernetes.namespace;
    const settings = env.rabbitmq;

    const serviceAccount = new kplus.ServiceAccount(this, 'service-account', {
      metadata: {
        name: env.kubernetes.rabbitmqServiceAccount,
        annotations: { 'iam.gke.io/gcp-service-account': serviceAccountEmail(env, 'rabbitmq') },
      },
      // Peer discovery calls the Kubernetes API with the pod's token.
      automountToken: true,
    });

    // Stable DNS names for the nodes (rabbitmq-0.rabbitmq-headless…), published before the pods are
    // ready: a node must find its peers in order to become ready at all.
    const headless = new kplus.Service(this, 'headless', {
      metadata: { name: HEADLESS_SERVICE },
      clusterIP: 'None',
      publishNotReadyAddresses: true,
      ports: [
        { name: 'amqp', port: AMQP_PORT },
        { name: 'epmd', port: EPMD_PORT },
        { name: 'dist', port: DIST_PORT },
      ],
    });

    // The plugin reads exactly one object: the headless Service's endpoints.
    const role = new kplus.k8s.KubeRole(this, 'peer-discovery', { metadata: { name: 'rabbitmq-peer-discovery' }, rules: PEER_DISCOVERY_RULES });
    new kplus.k8s.KubeRoleBinding(this, 'peer-discovery-binding', {
      metadata: { name: 'rabbitmq-peer-discovery' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: role.name },
      subjects: [{ kind: 'ServiceAccount', name: serviceAccount.name, namespace }],
    });

    const config = new kplus.ConfigMap(this, 'config', {
      metadata: { name: 'rabbitmq-config' },
      data: {
        'enabled_plugins': '[rabbitmq_peer_discovery_k8s,rabbitmq_management,rabbitmq_prometheus].\n',
        'rabbitmq.conf': rabbitmqConf(namespace, settings),
      },
    });

    this.statefulSet = new kplus.StatefulSet(this, 'statefulset', {
      metadata: { name: 'rabbitmq' },
      service: headless,
      replicas: settings.replicas,
      select: false,
      podMetadata: {
        labels: this.podLabels,
        // `kubectl exec` / `logs` without -c mean the broker, not the definitions exporter.
        annotations: { 'kubectl.kubernetes.io/default-container': 'rabbitmq' },
      },
      // All nodes start at once: after a full stop the last node to stop must boot first, and an
      // ordered start (rabbitmq-0 first, waiting to be ready) could wait for it forever.
      podManagementPolicy: kplus.PodManagementPolicy.PARALLEL,
      serviceAccount,
      automountServiceAccountToken: true,
      securityContext: {
        ensureNonRoot: true,
        user: RABBITMQ_UID,
        group: RABBITMQ_UID,
        fsGroup: RABBITMQ_UID,
        fsGroupChangePolicy: kplus.FsGroupChangePolicy.ON_ROOT_MISMATCH,
      },
      // Long enough for a node to hand its quorum queue leaderships over and stop cleanly.
      terminationGracePeriod: Duration.seconds(120),
    });
    this.statefulSet.select(kplus.LabelSelector.of({ labels: this.podLabels }));
    // cdk8s-plus points the headless Service at its own per-construct label; select like the rest.
    ApiObject.of(headless).addJsonPatch(JsonPatch.replace('/spec/selector', this.podLabels));

    const secret = kplus.Secret.fromSecretName(this, 'secret', rabbitmqSecret.name);
    const nodeDomain = `${HEADLESS_SERVICE}.${namespace}.svc.cluster.local`;
    // The broker and the definitions exporter below address the same node with the same cookie.
    const nodeVariables = {
      POD_NAME: kplus.EnvValue.fromFieldRef(kplus.EnvFieldPaths.POD_NAME),
      // Node names from the stable pod DNS names, so a node keeps its identity (and its data)
      // across restarts and rescheduling.
      RABBITMQ_USE_LONGNAME: kplus.EnvValue.fromValue('true'),
      RABBITMQ_NODENAME: kplus.EnvValue.fromValue(`rabbit@$(POD_NAME).${nodeDomain}`),
      // A variable rather than a mounted file: a Secret volume under an fsGroup is group-readable,
      // and Erlang refuses a cookie file that anyone but its owner can read.
      RABBITMQ_ERLANG_COOKIE: kplus.EnvValue.fromSecretValue({ secret, key: rabbitmqSecret.erlangCookie }),
    };
    const image = mirroredFromDockerHub(env, IMAGE);
    const container = this.statefulSet.addContainer({
      name: 'rabbitmq',
      image,
      // A pinned tag: pulled once per node, not at every restart.
      imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT,
      ports: [
        { name: 'amqp', number: AMQP_PORT },
        { name: 'amqps', number: AMQPS_PORT },
        { name: 'epmd', number: EPMD_PORT },
        { name: 'dist', number: DIST_PORT },
        { name: 'management', number: MANAGEMENT_PORT },
        { name: PROMETHEUS_PORT_NAME, number: PROMETHEUS_PORT },
      ],
      envVariables: {
        ...nodeVariables,
        RABBITMQ_DEFAULT_USER: kplus.EnvValue.fromSecretValue({ secret, key: rabbitmqSecret.username }),
        RABBITMQ_DEFAULT_PASS: kplus.EnvValue.fromSecretValue({ secret, key: rabbitmqSecret.password }),
      },
      // Ready once the node accepts AMQP connections; alive while it answers the CLI at all. Both
      // are CLI calls that start an Erlang VM, hence the generous timeouts and periods.
      readiness: kplus.Probe.fromCommand(['rabbitmq-diagnostics', '-q', 'check_port_connectivity'], {
        initialDelaySeconds: Duration.seconds(20),
        periodSeconds: Duration.seconds(30),
        timeoutSeconds: Duration.seconds(20),
        failureThreshold: 3,
      }),
      liveness: kplus.Probe.fromCommand(['rabbitmq-diagnostics', '-q', 'ping'], {
        initialDelaySeconds: Duration.seconds(60),
        periodSeconds: Duration.seconds(60),
        timeoutSeconds: Duration.seconds(20),
        failureThreshold: 3,
      }),
      // Requests equal limits: the broker is never the pod evicted first under memory pressure.
      resources: {
        cpu: { request: cpu(settings.cpu), limit: cpu(settings.cpu) },
        memory: { request: memory(settings.memory), limit: memory(settings.memory) },
      },
      // The broker writes outside its data directory too (crash dumps go to /var/log/rabbitmq, for
      // one), so the root filesystem stays writable; only the data directory is a volume.
      securityContext: restrictedContainer(RABBITMQ_UID, false),
    });
    container.mount('/etc/rabbitmq', kplus.Volume.fromConfigMap(this, 'config-volume', config, { name: 'config' }), { readOnly: true });
    // The TLS listener's files. Owned by root, group 999 (fsGroup): 0440 lets the broker read the
    // key and nobody else.
    const tls = kplus.Volume.fromSecret(this, 'tls-volume', kplus.Secret.fromSecretName(this, 'tls-secret', rabbitmqTlsSecret.name), {
      name: 'tls',
      defaultMode: 0o440,
      items: {
        [rabbitmqTlsSecret.ca]: { path: rabbitmqTlsSecret.ca },
        [rabbitmqTlsSecret.cert]: { path: rabbitmqTlsSecret.cert },
        [rabbitmqTlsSecret.key]: { path: rabbitmqTlsSecret.key },
      },
    });
    container.mount(TLS_DIR, tls, { readOnly: true });

    // Definitions (vhosts, users and their permissions, policies, queues, exchanges, bindings),
    // exported every hour by each node onto its own volume, the last week kept: what an operator's
    // mistake (a deleted policy, vhost or queue) is restored from, with
    // `rabbitmqctl import_definitions <file>` (k8s/README.md). In prod each of the three zonal disks
    // holds a copy. Why an export rather than definitions imported at boot from a ConfigMap: boot
    // import makes RabbitMQ skip creating the default user, and the user's password must not be in a
    // ConfigMap; and the application declares its queues and exchanges itself
    // (src/queue/rabbitmq.ts), so the export holds what was made by hand as well. The file holds the
    // users' salted password hashes, as the node's own database on the same disk does. A sidecar
    // rather than a CronJob: the CLI must reach the node over Erlang distribution with its cookie and
    // a resolvable long node name, which the node's own pod has, and the disk is ReadWriteOnce.
    this.statefulSet.addContainer({
      name: 'definitions-backup',
      image,
      imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT,
      command: ['sh', '-c', definitionsBackupScript()],
      envVariables: nodeVariables,
      resources: {
        cpu: { request: cpu('100m'), limit: cpu('100m') },
        memory: { request: memory('256Mi'), limit: memory('256Mi') },
      },
      securityContext: restrictedContainer(RABBITMQ_UID, false),
    });

    // cdk8s-plus has no volume claim templates; the claim is the pod's data directory.
    ApiObject.of(this.statefulSet).addJsonPatch(
      JsonPatch.add('/spec/volumeClaimTemplates', [
        {
          metadata: { name: DATA_VOLUME },
          spec: {
            accessModes: ['ReadWriteOnce'],
            resources: { requests: { storage: kplus.k8s.Quantity.fromString(settings.storage) } },
          },
        },
      ]),
      JsonPatch.add('/spec/template/spec/containers/0/volumeMounts/-', { name: DATA_VOLUME, mountPath: '/var/lib/rabbitmq' }),
      // The exporter has no other mount, hence no list to append to.
      JsonPatch.add('/spec/template/spec/containers/1/volumeMounts', [{ name: DATA_VOLUME, mountPath: '/var/lib/rabbitmq' }]),
    );
    if (settings.replicas > 1) {
      // One node per machine: losing a machine costs one quorum member, never two.
      this.statefulSet.scheduling.separate(kplus.Pods.select(this, 'peers', { labels: this.podLabels }), {
        topology: kplus.Topology.HOSTNAME,
      });
      // And one per zone: the cluster is regional (infra/cluster.ts), so losing a zone costs one
      // member too. DoNotSchedule: a node waits for a machine in the right zone (the autoscaler
      // makes one) rather than doubling up. minDomains counts zones without a node yet, so the
      // third node is not put beside one of the first two while only two zones have machines;
      // nodeTaintsPolicy Honor leaves out the GPU nodes, which the broker cannot run on. Each
      // node's disk is zonal, so once placed a node stays in its zone.
      ApiObject.of(this.statefulSet).addJsonPatch(
        JsonPatch.add('/spec/template/spec/topologySpreadConstraints', [
          {
            maxSkew: 1,
            minDomains: settings.replicas,
            topologyKey: 'topology.kubernetes.io/zone',
            whenUnsatisfiable: 'DoNotSchedule',
            nodeTaintsPolicy: 'Honor',
            labelSelector: { matchLabels: this.podLabels },
          },
        ]),
      );
    }

    // A voluntary disruption (node upgrade, drain) takes one node at a time: quorum kept.
    new kplus.k8s.KubePodDisruptionBudget(this, 'pdb', {
      metadata: { name: 'rabbitmq' },
      spec: {
        maxUnavailable: kplus.k8s.IntOrString.fromNumber(1),
        selector: { matchLabels: this.podLabels },
      },
    });

    // KEDA's operator reads queue depths here; a ClusterIP Service, so nothing outside the cluster
    // can reach it, and network-policies.ts admits KEDA's operator alone.
    const management = new kplus.Service(this, 'management', {
      metadata: { name: MANAGEMENT_SERVICE },
      type: kplus.ServiceType.CLUSTER_IP,
      ports: [{ name: 'management', port: MANAGEMENT_PORT, targetPort: MANAGEMENT_PORT }],
    });
    management.select(kplus.Pods.select(this, 'management-nodes', { labels: this.podLabels }));

    // The runners reach the broker here, inside the cluster, plaintext: the traffic never leaves
    // the cluster's pod network, and network-policies.ts admits 5672 from the runner pods alone.
    const amqp = new kplus.Service(this, 'amqp', {
      metadata: { name: RUNNER_AMQP_SERVICE },
      type: kplus.ServiceType.CLUSTER_IP,
      ports: [{ name: 'amqp', port: AMQP_PORT, targetPort: AMQP_PORT }],
    });
    amqp.select(kplus.Pods.select(this, 'amqp-nodes', { labels: this.podLabels }));

    // The gateway (Cloud Run, direct VPC egress) reaches the broker here, over TLS: this hop leaves
    // the cluster for the VPC. Internal: an address in the nodes' subnet, reserved by infra/, never
    // a public one. `Local` keeps the client's address as the source, so the NetworkPolicy can admit
    // Cloud Run's range and nothing else; the source range is Cloud Run's alone.
    const internal = new kplus.Service(this, 'internal-lb', {
      metadata: {
        name: 'rabbitmq',
        annotations: { 'networking.gke.io/load-balancer-type': 'Internal' },
      },
      type: kplus.ServiceType.LOAD_BALANCER,
      ports: [{ name: 'amqps', port: AMQPS_PORT, targetPort: AMQPS_PORT }],
      loadBalancerSourceRanges: [env.network.cloudRunCidr],
    });
    internal.select(kplus.Pods.select(this, 'nodes', { labels: this.podLabels }));
    // Patch paths name the cdk8s props (loadBalancerIp), which become the API's fields on output.
    ApiObject.of(internal).addJsonPatch(
      JsonPatch.add('/spec/loadBalancerIp', env.network.rabbitmqAddress),
      JsonPatch.add('/spec/externalTrafficPolicy', 'Local'),
    );
  }
}

/**
 * The whole configuration: the ConfigMap replaces /etc/rabbitmq, hiding the image's conf.d
 * defaults (which let `guest` in from anywhere).
 */
function rabbitmqConf(namespace: string, settings: Environment['rabbitmq']): string {
  // Erlang sees the machine's memory, not the container's limit: without this the memory alarm
  // would trip only after the kernel has killed the pod. 80% leaves room for the VM's own overhead.
  const memoryBytes = Math.floor(mebibytes(settings.memory) * 1024 * 1024 * 0.8);
  return [
    `listeners.tcp.default = ${AMQP_PORT}`,
    // TLS for the clients outside the cluster (the gateway). They authenticate with the password,
    // so no client certificate is asked for; they verify ours against ca.crt. TLS 1.2 and 1.3 only.
    `listeners.ssl.default = ${AMQPS_PORT}`,
    `ssl_options.cacertfile = ${TLS_DIR}/${rabbitmqTlsSecret.ca}`,
    `ssl_options.certfile = ${TLS_DIR}/${rabbitmqTlsSecret.cert}`,
    `ssl_options.keyfile = ${TLS_DIR}/${rabbitmqTlsSecret.key}`,
    'ssl_options.verify = verify_none',
    'ssl_options.fail_if_no_peer_cert = false',
    'ssl_options.versions.1 = tlsv1.3',
    'ssl_options.versions.2 = tlsv1.2',
    'log.console = true',
    'log.console.level = info',
    'log.file = false',
    'cluster_formation.peer_discovery_backend = k8s',
    'cluster_formation.k8s.host = kubernetes.default.svc.cluster.local',
    'cluster_formation.k8s.address_type = hostname',
    `cluster_formation.k8s.service_name = ${HEADLESS_SERVICE}`,
    `cluster_formation.k8s.hostname_suffix = .${HEADLESS_SERVICE}.${namespace}.svc.cluster.local`,
    // A node missing from the endpoints is only reported, never removed from the cluster: removal
    // would throw away its quorum queue replicas.
    'cluster_formation.node_cleanup.only_log_warning = true',
    // The minority side of a partition pauses instead of serving a diverging copy.
    'cluster_partition_handling = pause_minority',
    // Quorum queues get a member on every node, and get it back when it is missing: after a node is
    // replaced with an empty disk, or when a queue was declared while a node was down. Checked
    // hourly and shortly after a node joins. Members on a node that is gone are kept (auto_remove
    // off): the node is expected back with its disk, as cluster_formation.node_cleanup says too.
    'quorum_queue.continuous_membership_reconciliation.enabled = true',
    `quorum_queue.continuous_membership_reconciliation.target_group_size = ${settings.replicas}`,
    'quorum_queue.continuous_membership_reconciliation.auto_remove = false',
    `total_memory_available_override_value = ${memoryBytes}`,
    'disk_free_limit.absolute = 2GB',
    `management.tcp.port = ${MANAGEMENT_PORT}`,
    // Metrics without credentials, on their own port: network-policies.ts admits GMP's collectors alone.
    `prometheus.tcp.port = ${PROMETHEUS_PORT}`,
    // The user created at first boot (RABBITMQ_DEFAULT_USER) may use AMQP on its vhost and read the
    // management API, but not administer the broker (users, policies): that is `rabbitmqctl` in a pod.
    'default_user_tags.administrator = false',
    'default_user_tags.monitoring = true',
    '',
  ].join('\n');
}

/**
 * The definitions exporter: waits for the node, then exports every hour (every five minutes after
 * a failure) into a temporary file renamed into place, so a listed file is always a whole export,
 * and keeps the newest 168. A TERM (pod stopping) ends it at once instead of at the grace period.
 */
function definitionsBackupScript(): string {
  return [
    "trap 'exit 0' TERM",
    'dir=/var/lib/rabbitmq/definitions-backup',
    'mkdir -p "$dir"',
    'tmp="$dir/.export.json"',
    'sleep 300 & wait $!',
    'while true; do',
    '  if rabbitmqctl -q export_definitions "$tmp"; then',
    '    mv "$tmp" "$dir/definitions-$(date -u +%Y%m%dT%H%M%SZ).json"',
    '    ls -1 "$dir"/definitions-*.json | sort -r | tail -n +169 | xargs -r rm -f',
    '    sleep 3600 & wait $!',
    '  else',
    '    echo "definitions export failed; trying again in 5 minutes" >&2',
    '    sleep 300 & wait $!',
    '  fi',
    'done',
    '',
  ].join('\n');
}
