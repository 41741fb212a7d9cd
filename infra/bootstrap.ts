// What exists before the first `terraform apply`, made once per environment by
// scripts/ci/bootstrap.sh (which reads this file through scripts/ci/delivery.ts): the APIs, the state
// bucket, the secrets (generated there, never passing through Terraform, so no payload reaches its
// state), and the delivery accounts that run Terraform and CI, with their roles. Terraform cannot
// make these itself: they are its own state, its own credentials, and the identity that applies it.
import { environments, secretIds, type Environment } from './environments.ts';

/** APIs the stack and the delivery scripts call; the preflight reports each one missing. */
export const requiredApis = [
  'artifactregistry.googleapis.com',
  'cloudresourcemanager.googleapis.com',
  'compute.googleapis.com',
  'container.googleapis.com',
  'iam.googleapis.com',
  'iamcredentials.googleapis.com',
  'iap.googleapis.com',
  'orgpolicy.googleapis.com',
  'run.googleapis.com',
  'secretmanager.googleapis.com',
  'servicenetworking.googleapis.com',
  'serviceusage.googleapis.com',
  'sqladmin.googleapis.com',
  'storage.googleapis.com',
] as const;

/** Terraform state: one versioned bucket per project, named as the stack's GCS backend expects. */
export function stateBucket(env: Environment): string {
  return `${env.project}-tfstate`;
}

/**
 * How bootstrap.sh makes each secret's first version. `random`: 32 random bytes, hex. `amqp-url`:
 * the gateway's `amqps://` URL to the internal load balancer (user `itemgen`, rabbitmq-password).
 * `tls-*`: a private CA and a server certificate for RabbitMQ's TLS listener, made together.
 */
export type SecretSource = 'random' | 'amqp-url' | 'tls-ca' | 'tls-cert' | 'tls-key';

export const bootstrapSecrets: { id: (typeof secretIds)[keyof typeof secretIds]; source: SecretSource }[] = [
  { id: secretIds.databasePassword, source: 'random' },
  { id: secretIds.runnerToken, source: 'random' },
  { id: secretIds.rabbitmqPassword, source: 'random' },
  { id: secretIds.rabbitmqErlangCookie, source: 'random' },
  { id: secretIds.adminToken, source: 'random' },
  { id: secretIds.amqpUrl, source: 'amqp-url' },
  { id: secretIds.rabbitmqTlsCa, source: 'tls-ca' },
  { id: secretIds.rabbitmqTlsCert, source: 'tls-cert' },
  { id: secretIds.rabbitmqTlsKey, source: 'tls-key' },
];

/** The AMQP user RabbitMQ creates at first boot (RABBITMQ_DEFAULT_USER), in every URL. */
export const AMQP_USER = 'itemgen';
/** RabbitMQ's TLS port: the internal load balancer (Cloud Run's way in) serves only this one. */
export const AMQPS_PORT = 5671;

/** The environments, for scripts that take a name. */
export { environments };

/** A project-level role of a delivery account, optionally limited by an IAM condition. */
export interface ProjectGrant {
  role: string;
  condition?: { title: string; expression: string };
}

/** Custom roles bootstrap.sh creates in each project (id → title, permissions). */
export interface CustomRole {
  id: string;
  title: string;
  permissions: string[];
}

/**
 * Roles of `itemgen-terraform`: what the stack's resource types need to be created and changed
 * (test/infra/bootstrap.test.ts maps every type in the synthesized stacks to one of these), never
 * owner or editor. Project IAM is delegated only for the roles the stack grants (the condition).
 * FIRST DRAFT: refined with the per-type table.
 */
export function terraformProjectRoles(_env: Environment): ProjectGrant[] {
  return [
    { role: 'roles/artifactregistry.admin' },
    { role: 'roles/cloudsql.admin' },
    { role: 'roles/compute.instanceAdmin.v1' },
    { role: 'roles/compute.networkAdmin' },
    { role: 'roles/compute.securityAdmin' },
    { role: 'roles/container.clusterAdmin' },
    { role: 'roles/iam.roleAdmin' },
    { role: 'roles/iam.serviceAccountAdmin' },
    { role: 'roles/iam.serviceAccountUser' },
    { role: 'roles/run.admin' },
    { role: 'roles/servicenetworking.networksAdmin' },
    { role: 'roles/serviceusage.serviceUsageConsumer' },
    { role: 'roles/storage.admin' },
  ];
}

/**
 * Roles of `itemgen-planner`: reading every resource the stack refreshes and its IAM policy, and
 * nothing that reads a secret's payload. FIRST DRAFT: refined with the per-type table.
 */
export function planProjectRoles(_env: Environment): ProjectGrant[] {
  return [
    { role: 'roles/artifactregistry.reader' },
    { role: 'roles/browser' },
    { role: 'roles/cloudsql.viewer' },
    { role: 'roles/compute.viewer' },
    { role: 'roles/container.clusterViewer' },
    { role: 'roles/iam.securityReviewer' },
    { role: 'roles/iam.serviceAccountViewer' },
    { role: 'roles/run.viewer' },
    { role: 'roles/secretmanager.viewer' },
    { role: 'roles/serviceusage.serviceUsageConsumer' },
    { role: 'roles/storage.bucketViewer' },
  ];
}

/** Custom roles made at bootstrap (no predefined role holds only these). */
export const bootstrapCustomRoles: CustomRole[] = [
  {
    // Terraform grants access to secrets it does not hold the payloads of.
    id: 'itemgenSecretIamAdmin',
    title: 'itemgen: manage secret IAM policies (no payload access)',
    permissions: ['secretmanager.secrets.get', 'secretmanager.secrets.getIamPolicy', 'secretmanager.secrets.setIamPolicy'],
  },
];
