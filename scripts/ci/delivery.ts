// What the CI scripts (scripts/ci/*.sh) need to know about an environment, taken from the places
// that define it, so no script repeats a name: project, region and repositories from
// infra/environments.ts; the Cloud Run service and the GKE cluster as the synthesized Terraform
// stack declares them. Also pins the runner image tag in the committed manifests before they are
// applied.
//   node --import tsx scripts/ci/delivery.ts settings <env>                    shell assignments
//   node --import tsx scripts/ci/delivery.ts bootstrap <env>                   shell arrays (bootstrap.sh)
//   node --import tsx scripts/ci/delivery.ts pin-image <dir> <repository> <tag|sha256:…>   manifests on stdout
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  AMQP_USER,
  AMQPS_PORT,
  bootstrapCustomRoles,
  bootstrapSecrets,
  planProjectRoles,
  requiredApis,
  stateBucket,
  terraformProjectRoles,
  type ProjectGrant,
} from '../../infra/bootstrap.ts';
import {
  ci,
  deliveryAccountEmail,
  environments,
  imageRepository,
  secretName,
  serviceAccountEmail,
  type EnvironmentName,
} from '../../infra/environments.ts';

/**
 * Where `npm run synth` writes the Terraform JSON of an environment's stack (ITEMGEN_CDKTF_OUT, for
 * stacks synthesized elsewhere, e.g. by the tests, instead of infra/cdktf.out).
 */
export const stackName = (env: EnvironmentName) => `itemgen-${env}`;
export const stackDir = (env: EnvironmentName) => `${process.env.ITEMGEN_CDKTF_OUT || 'infra/cdktf.out'}/stacks/${stackName(env)}`;

interface TerraformJson {
  resource?: Record<string, Record<string, Record<string, unknown>>>;
}

/** The one resource of the first of `types` that the stack declares, by its literal name and location. */
function placed(tf: TerraformJson, types: string[], what: string): { name: string; location: string } {
  for (const type of types) {
    const found = Object.entries(tf.resource?.[type] ?? {});
    if (found.length === 0) continue;
    if (found.length > 1) throw new Error(`the stack declares ${found.length} ${type} resources (${found.map(([id]) => id).join(', ')}); expected one ${what}`);
    const [id, body] = found[0]!;
    const literal = (field: string) => {
      const value = body[field];
      if (typeof value !== 'string' || value.includes('${')) {
        throw new Error(`${type}.${id}.${field} is not a literal string (${JSON.stringify(value)}); the CI scripts need the ${what}'s ${field}`);
      }
      return value;
    };
    return { name: literal('name'), location: literal('location') };
  }
  throw new Error(`the stack declares no ${types.join(' or ')}; expected the ${what}`);
}

export function isEnvironmentName(name: string): name is EnvironmentName {
  return Object.hasOwn(environments, name);
}

/** Settings of one environment; the stack's values only when it has been synthesized (`tf` given). */
export function deploySettings(name: EnvironmentName, tf?: TerraformJson): Record<string, string> {
  const env = environments[name];
  const settings: Record<string, string> = {
    ENV_NAME: env.name,
    PROJECT: env.project,
    REGION: env.region,
    PREFIX: env.prefix,
    STACK: stackName(name),
    STACK_DIR: stackDir(name),
    STATE_BUCKET: `${env.project}-tfstate`,
    REGISTRY_HOST: `${env.region}-docker.pkg.dev`,
    GATEWAY_REPOSITORY: imageRepository(env, 'gateway'),
    RUNNER_REPOSITORY: imageRepository(env, 'runner'),
    K8S_NAMESPACE: env.kubernetes.namespace,
    K8S_DIST: `k8s/dist/${name}`,
    STACK_SYNTHESIZED: tf ? 'true' : 'false',
    // Who each step acts as (lib.sh use_identity): no key file, only impersonation of these.
    TERRAFORM_ACCOUNT: deliveryAccountEmail(env, 'terraform'),
    PLANNER_ACCOUNT: deliveryAccountEmail(env, 'planner'),
    DEPLOYER_ACCOUNT: serviceAccountEmail(env, 'deployer'),
    JENKINS_ACCOUNT: deliveryAccountEmail(env, 'jenkins'),
    REVIEW_ACCOUNT: deliveryAccountEmail(env, 'review'),
    CI_HOME: ci.home,
    CI_HOME_PROJECT: environments[ci.home].project,
    CI_REVIEW_LABEL: ci.reviewLabel,
    CI_DEPLOY_LABEL: ci.deployLabel,
    DATABASE_PASSWORD_SECRET: secretName(env, 'databasePassword'),
    // preflight.sh: the GPU quota the node pool can grow into.
    GPU_MAX_NODES: String(env.gke.gpuMaxNodes),
    GPU_SPOT: String(env.gke.gpuSpot),
    GPU_QUOTA_METRIC: gpuQuotaMetric(env.gke.gpuType),
    // cluster-secrets.sh and bootstrap.sh: how the broker is reached.
    RABBITMQ_ADDRESS: env.network.rabbitmqAddress,
    AMQP_USER,
    AMQPS_PORT: String(AMQPS_PORT),
  };
  if (tf) {
    const service = placed(tf, ['google_cloud_run_v2_service', 'google_cloud_run_service'], 'Cloud Run gateway service');
    const cluster = placed(tf, ['google_container_cluster'], 'GKE cluster');
    Object.assign(settings, {
      CLOUD_RUN_SERVICE: service.name,
      CLOUD_RUN_REGION: service.location,
      GKE_CLUSTER: cluster.name,
      GKE_LOCATION: cluster.location,
    });
  }
  return settings;
}

/** Compute Engine's regional quota metric of a GPU type: nvidia-l4 → NVIDIA_L4_GPUS. */
export function gpuQuotaMetric(gpuType: string): string {
  return `${gpuType.toUpperCase().replaceAll('-', '_')}_GPUS`;
}

const quote = (value: string) => `'${value.replaceAll("'", `'\\''`)}'`;

/** `KEY='value'` lines that bash can eval safely, whatever the values hold. */
export function shellAssignments(values: Record<string, string>): string {
  return Object.entries(values)
    .map(([key, value]) => `${key}=${quote(value)}`)
    .join('\n');
}

/** `KEY=('a' 'b')` lines: bash arrays, as safe to eval as shellAssignments. */
export function shellArrays(values: Record<string, readonly string[]>): string {
  return Object.entries(values)
    .map(([key, list]) => `${key}=(${list.map(quote).join(' ')})`)
    .join('\n');
}

/**
 * What scripts/ci/bootstrap.sh makes for an environment, from infra/bootstrap.ts, as parallel bash
 * arrays (a role's condition title and expression are '' when it has none), so the lists are
 * written once, in TypeScript, and the script only walks them.
 */
export function bootstrapPlan(name: EnvironmentName): Record<string, readonly string[]> {
  const env = environments[name];
  const grants = (list: ProjectGrant[]) => ({
    roles: list.map((g) => g.role),
    titles: list.map((g) => g.condition?.title ?? ''),
    expressions: list.map((g) => g.condition?.expression ?? ''),
  });
  const terraform = grants(terraformProjectRoles(env));
  const planner = grants(planProjectRoles(env));
  return {
    REQUIRED_APIS: [...requiredApis],
    SECRET_IDS: bootstrapSecrets.map((s) => s.id),
    SECRET_SOURCES: bootstrapSecrets.map((s) => s.source),
    BOOTSTRAP_STATE_BUCKET: [stateBucket(env)],
    TERRAFORM_ROLES: terraform.roles,
    TERRAFORM_CONDITION_TITLES: terraform.titles,
    TERRAFORM_CONDITION_EXPRESSIONS: terraform.expressions,
    PLANNER_ROLES: planner.roles,
    PLANNER_CONDITION_TITLES: planner.titles,
    PLANNER_CONDITION_EXPRESSIONS: planner.expressions,
    CUSTOM_ROLE_IDS: bootstrapCustomRoles.map((r) => r.id),
    CUSTOM_ROLE_TITLES: bootstrapCustomRoles.map((r) => r.title),
    CUSTOM_ROLE_PERMISSIONS: bootstrapCustomRoles.map((r) => r.permissions.join(',')),
  };
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/**
 * Points every `image:` of `repository` (whatever tag or digest the committed manifest carries) at
 * `repository:tag`, or at `repository@sha256:…` when given a digest (what deploys use: the bytes,
 * not a name that could move). Returns the text and how many images were pinned.
 */
export function pinImage(manifests: string, repository: string, tag: string): { text: string; count: number } {
  const digest = /^sha256:[0-9a-f]{64}$/.test(tag);
  if (!digest && !/^[\w][\w.-]{0,127}$/.test(tag)) throw new Error(`not a valid image tag or digest: ${JSON.stringify(tag)}`);
  const reference = digest ? `${repository}@${tag}` : `${repository}:${tag}`;
  const line = new RegExp(`^(\\s*(?:-\\s+)?image:\\s*)(["']?)${escapeRegExp(repository)}(?::[\\w][\\w.-]{0,127}|@sha256:[0-9a-f]{64})?\\2[ \\t]*$`, 'gm');
  let count = 0;
  const text = manifests.replace(line, (_all, key: string, q: string) => {
    count++;
    return `${key}${q}${reference}${q}`;
  });
  return { text, count };
}

/** The YAML files of a manifest folder, in name order, as one multi-document stream. */
export function readManifests(dir: string): string {
  const files = fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort();
  if (files.length === 0) throw new Error(`${dir} holds no .yaml manifests (run npm run synth)`);
  return files.map((f) => fs.readFileSync(path.join(dir, f), 'utf8').replace(/\n*$/, '\n')).join('---\n');
}

function main(args: string[]): void {
  const [command, ...rest] = args;
  if (command === 'settings' && rest.length === 1) {
    const name = rest[0]!;
    if (!isEnvironmentName(name)) throw new Error(`unknown environment ${JSON.stringify(name)}; one of: ${Object.keys(environments).join(', ')}`);
    const file = path.join(stackDir(name), 'cdk.tf.json');
    const tf = fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as TerraformJson) : undefined;
    process.stdout.write(`${shellAssignments(deploySettings(name, tf))}\n`);
    return;
  }
  if (command === 'bootstrap' && rest.length === 1) {
    const name = rest[0]!;
    if (!isEnvironmentName(name)) throw new Error(`unknown environment ${JSON.stringify(name)}; one of: ${Object.keys(environments).join(', ')}`);
    process.stdout.write(`${shellArrays(bootstrapPlan(name))}\n`);
    return;
  }
  if (command === 'pin-image' && rest.length === 3) {
    const [dir, repository, tag] = rest as [string, string, string];
    const { text, count } = pinImage(readManifests(dir), repository, tag);
    if (count === 0) throw new Error(`no container in ${dir} uses an image of ${repository}; nothing to pin`);
    process.stderr.write(`pinned ${count} image(s) of ${repository} to ${tag}\n`);
    process.stdout.write(text);
    return;
  }
  throw new Error('usage: delivery.ts settings <env> | bootstrap <env> | pin-image <dir> <repository> <tag|sha256:…>');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    main(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`delivery.ts: ${(err as Error).message}\n`);
    process.exit(1);
  }
}
