// The Kubernetes Secrets the manifests read by reference (secretKeyRef, or a volume), never by
// value. They are not in git and not synthesized: the bootstrap (k8s/README.md, and package D's
// scripts/ci/cluster-secrets.sh) creates them in the namespace, each key from the Secret Manager
// secret of the same id (infra/environments.ts secretIds), except the values Secret Manager does not
// hold: the RabbitMQ user name, the runners' in-cluster AMQP URL (composed from rabbitmq-password),
// and the gateway's URL, which Cloud Run assigns at the first `terraform apply` (output `gateway_url`).
import { secretIds, type Environment } from '../infra/environments.ts';

/** Read by the RabbitMQ nodes: the default (administrator) user and the Erlang cookie nodes cluster with. */
export const rabbitmqSecret = {
  name: 'rabbitmq',
  username: 'rabbitmq-username',
  password: secretIds.rabbitmqPassword,
  erlangCookie: secretIds.rabbitmqErlangCookie,
} as const;

/**
 * Mounted by the RabbitMQ nodes for the TLS listener (5671): the CA, the server certificate (its
 * SANs: the load balancer's address and the in-cluster names) and its key, PEM, from the Secret
 * Manager secrets rabbitmq-tls-ca, -cert and -key. The key names are those of a `kubernetes.io/tls`
 * Secret plus the CA, so `kubectl create secret generic … --from-file` writes them as they are.
 */
export const rabbitmqTlsSecret = {
  name: 'rabbitmq-tls',
  ca: 'ca.crt',
  cert: 'tls.crt',
  key: 'tls.key',
} as const;

/** The ClusterIP Service the runners reach plaintext AMQP (5672) on; they never leave the cluster. */
export const RUNNER_AMQP_SERVICE = 'rabbitmq-amqp';

/** The host in the runners' `amqp-url`. */
export function runnerAmqpHost(env: Environment): string {
  return `${RUNNER_AMQP_SERVICE}.${env.kubernetes.namespace}.svc.cluster.local`;
}

/**
 * Read by the runners. `amqp-url` is not Secret Manager's amqp-url (that one is the gateway's,
 * `amqps://` to the internal load balancer): it is `amqp://itemgen:<rabbitmq-password>@<runnerAmqpHost>:5672`,
 * composed when the Secret is created.
 */
export const runnerSecret = {
  name: 'runner',
  token: secretIds.runnerToken,
  amqpUrl: 'amqp-url',
  gatewayUrl: 'gateway-url',
} as const;

/**
 * Read by KEDA: the management API's URL with the broker user's credentials,
 * `http://<user>:<password>@rabbitmq-management.<namespace>.svc.cluster.local:15672`.
 */
export const kedaRabbitmqSecret = {
  name: 'keda-rabbitmq',
  managementUrl: 'management-url',
} as const;
