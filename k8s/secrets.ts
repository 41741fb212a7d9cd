// The Kubernetes Secrets the manifests read by reference (secretKeyRef), never by value. They are
// not in git and not synthesized: the bootstrap (k8s/README.md) creates them in the namespace, each
// key from the Secret Manager secret of the same id (infra/environments.ts secretIds), except the two
// values Secret Manager does not hold: the RabbitMQ user name, and the gateway's URL, which Cloud Run
// assigns at the first `terraform apply` (output `gateway_url`).
import { secretIds } from '../infra/environments.ts';

/** Read by the RabbitMQ nodes: the default (administrator) user and the Erlang cookie nodes cluster with. */
export const rabbitmqSecret = {
  name: 'rabbitmq',
  username: 'rabbitmq-username',
  password: secretIds.rabbitmqPassword,
  erlangCookie: secretIds.rabbitmqErlangCookie,
} as const;

/** Read by the runners. */
export const runnerSecret = {
  name: 'runner',
  token: secretIds.runnerToken,
  amqpUrl: secretIds.amqpUrl,
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
