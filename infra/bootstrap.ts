// What exists before the first `terraform apply`, made once per environment by
// scripts/ci/bootstrap.sh (which reads this file through scripts/ci/delivery.ts): the APIs, the state
// bucket, the secrets (generated there, never passing through Terraform, so no payload reaches its
// state), and the delivery accounts that run Terraform and CI, with their roles. Terraform cannot
// make these itself: they are its own state, its own credentials, and the identity that applies it.
import { ci, environments, secretIds, type Environment } from './environments.ts';

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

/** Custom roles bootstrap.sh creates in each project (id → title, permissions), and who holds each. */
export interface CustomRole {
  id: string;
  title: string;
  permissions: string[];
  /** The delivery account granted it at project level (terraformProjectRoles / planProjectRoles). */
  holder: 'terraform' | 'planner';
}

/** Custom roles made at bootstrap (no predefined role holds only these). */
export const bootstrapCustomRoles: CustomRole[] = [
  {
    // Terraform grants access to secrets it does not hold the payloads of
    // (google_secret_manager_secret_iam_member: get, getIamPolicy, setIamPolicy).
    id: 'itemgenSecretIamAdmin',
    title: 'itemgen: manage secret IAM policies (no payload access)',
    permissions: ['secretmanager.secrets.get', 'secretmanager.secrets.getIamPolicy', 'secretmanager.secrets.setIamPolicy'],
    holder: 'terraform',
  },
  {
    // Refreshing google_service_networking_connection lists the connections, which needs
    // servicenetworking.services.get (documented on services.connections.list); the only
    // predefined roles holding it are roles/servicenetworking.networksAdmin and the service agent's.
    // Secret IAM policies are read by name, here, rather than through roles/secretmanager.viewer:
    // plans need the policy and nothing else of a secret.
    id: 'itemgenPlanReader',
    title: 'itemgen: read what no predefined viewer role reads (plans)',
    permissions: ['secretmanager.secrets.getIamPolicy', 'servicenetworking.services.get'],
    holder: 'planner',
  },
];

/** Full name of a bootstrap custom role in an environment's project. */
export function customRoleName(env: Environment, id: string): string {
  return `projects/${env.project}/roles/${id}`;
}

/**
 * The roles the stack grants at project level (google_project_iam_member) in each environment:
 * the only ones Terraform's Project IAM delegation may add or remove (the condition below).
 * test/infra/bootstrap.test.ts compares this with the synthesized stacks.
 */
export function stackProjectRoles(env: Environment): string[] {
  const ciHome = env.name === ci.home;
  const roles = [
    'roles/container.clusterViewer',
    'roles/container.defaultNodeServiceAccount',
    // The gateway's Managed Prometheus sidecar (gateway-service.ts).
    'roles/monitoring.metricWriter',
    // The gateway's and the runners' spans (environments.ts tracingSettings).
    'roles/cloudtrace.agent',
    ...(ciHome ? ['roles/logging.logWriter', 'roles/monitoring.metricWriter', customRoleName(env, 'itemgenAgentProvisioner')] : []),
  ];
  return [...new Set(roles)].sort();
}

/**
 * Roles of `itemgen-terraform`: what the stack's resource types need to be created, changed and
 * read (test/infra/bootstrap.test.ts maps every type in the synthesized stacks to one of these),
 * never owner or editor. Project IAM is delegated only for the roles the stack grants: the
 * condition is the documented way to limit roles/resourcemanager.projectIamAdmin ("modifiedGrantsByRole").
 * Besides these, bootstrap.sh grants it objectAdmin on the state bucket and secretAccessor on the
 * database-password secret only (deploy plans export TF_VAR_database_password from it).
 */
export function terraformProjectRoles(env: Environment): ProjectGrant[] {
  const delegated = stackProjectRoles(env).map((role) => `'${role}'`).join(', ');
  return [
    { role: 'roles/artifactregistry.admin' },
    { role: 'roles/browser' },
    { role: 'roles/cloudsql.admin' },
    { role: 'roles/compute.instanceAdmin.v1' },
    { role: 'roles/compute.networkAdmin' },
    { role: 'roles/compute.securityAdmin' },
    { role: 'roles/container.clusterAdmin' },
    { role: 'roles/iam.roleAdmin' },
    { role: 'roles/iam.serviceAccountAdmin' },
    { role: 'roles/iam.serviceAccountUser' },
    { role: 'roles/monitoring.dashboardEditor' },
    {
      role: 'roles/resourcemanager.projectIamAdmin',
      condition: {
        title: 'only the roles the stack grants',
        expression: `api.getAttribute('iam.googleapis.com/modifiedGrantsByRole', []).hasOnly([${delegated}])`,
      },
    },
    { role: 'roles/run.admin' },
    { role: 'roles/servicenetworking.networksAdmin' },
    { role: 'roles/serviceusage.serviceUsageConsumer' },
    { role: 'roles/storage.admin' },
    ...customRolesOf(env, 'terraform'),
  ];
}

/**
 * Roles of `itemgen-planner`: reading every resource the stack refreshes and its IAM policy, and
 * nothing that reads a secret's payload (the stack holds no secret version, so no secret role at
 * all). Besides these, bootstrap.sh grants it objectViewer on the state bucket.
 */
export function planProjectRoles(env: Environment): ProjectGrant[] {
  return [
    { role: 'roles/artifactregistry.reader' },
    { role: 'roles/browser' },
    { role: 'roles/cloudsql.viewer' },
    { role: 'roles/compute.viewer' },
    { role: 'roles/container.clusterViewer' },
    { role: 'roles/iam.roleViewer' },
    { role: 'roles/iam.securityReviewer' },
    { role: 'roles/iam.serviceAccountViewer' },
    { role: 'roles/monitoring.dashboardViewer' },
    { role: 'roles/run.viewer' },
    { role: 'roles/serviceusage.serviceUsageConsumer' },
    { role: 'roles/storage.bucketViewer' },
    ...customRolesOf(env, 'planner'),
  ];
}

function customRolesOf(env: Environment, holder: CustomRole['holder']): ProjectGrant[] {
  return bootstrapCustomRoles.filter((r) => r.holder === holder).map((r) => ({ role: customRoleName(env, r.id) }));
}
