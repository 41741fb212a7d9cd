import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ci, deliveryAccountEmail, environments, serviceAccountEmail, type Environment } from '../../infra/environments.ts';
import { eachStack, resolve, resources, type StackJson } from '../helpers/terraform.ts';

// What each kind of IAM member resource grants on, for a readable "kind target role" line.
const IAM_MEMBERS: Record<string, { kind: string; target: string }> = {
  google_project_iam_member: { kind: 'project', target: 'project' },
  google_storage_bucket_iam_member: { kind: 'bucket', target: 'bucket' },
  google_secret_manager_secret_iam_member: { kind: 'secret', target: 'secret_id' },
  google_artifact_registry_repository_iam_member: { kind: 'repository', target: 'repository' },
  google_service_account_iam_member: { kind: 'account', target: 'service_account_id' },
  google_cloud_run_v2_service_iam_member: { kind: 'run', target: 'name' },
};

/** Every grant of a stack, as "kind target role" lines by member (an account's member by its id). */
function grants(stack: StackJson): Map<string, string[]> {
  const byMember = new Map<string, string[]>();
  for (const [type, { kind, target }] of Object.entries(IAM_MEMBERS)) {
    for (const r of resources(stack, type)) {
      const member = resolve(stack, r.member);
      const line = `${kind} ${resolve(stack, r[target])} ${resolve(stack, r.role)}`;
      byMember.set(member, [...(byMember.get(member) ?? []), line].sort());
    }
  }
  return byMember;
}

function expectedGrants(env: Environment): Record<string, string[]> {
  const p = env.prefix;
  const accessor = (id: string) => `secret ${p}-${id} roles/secretmanager.secretAccessor`;
  const ciHome = env.name === ci.home;
  return {
    'serviceAccount:itemgen-gateway': [
      'account itemgen-gateway roles/iam.serviceAccountTokenCreator',
      `bucket ${env.project}-images itemgenImageDeleter`,
      `bucket ${env.project}-images itemgenThumbnailWriter`,
      `bucket ${env.project}-images roles/storage.objectViewer`,
      // Spans to Cloud Trace (infra/environments.ts tracingSettings).
      `project ${env.project} roles/cloudtrace.agent`,
      // Its Managed Prometheus sidecar writes the gateway's series (infra/gateway-service.ts).
      `project ${env.project} roles/monitoring.metricWriter`,
      accessor('admin-token'),
      accessor('amqp-url'),
      accessor('database-password'),
      accessor('rabbitmq-tls-ca'),
      accessor('runner-token'),
    ],
    'serviceAccount:itemgen-runner': [
      `bucket ${env.project}-images itemgenImageWriter`,
      `bucket ${env.project}-models roles/storage.objectViewer`,
      `project ${env.project} roles/cloudtrace.agent`,
    ],
    // RabbitMQ calls no Google API: its account holds nothing.
    // What CI deploys with, by impersonation; in the cluster, RBAC limits it to the namespace (k8s/).
    'serviceAccount:itemgen-deployer': [
      'account itemgen-gateway roles/iam.serviceAccountUser',
      `project ${env.project} roles/container.clusterViewer`,
      `repository ${p}-images roles/artifactregistry.writer`,
      `run ${p}-gateway roles/run.developer`,
    ],
    // The Jenkins VM's account (bootstrap-made, CI home): impersonates the deployer everywhere;
    // in the CI home it also makes the review agents, which run as the review account.
    [`serviceAccount:${deliveryAccountEmail(env, 'jenkins')}`]: [
      'account itemgen-deployer roles/iam.serviceAccountTokenCreator',
      ...(ciHome
        ? [
            `account projects/${env.project}/serviceAccounts/${deliveryAccountEmail(env, 'review')} roles/iam.serviceAccountUser`,
            `project ${env.project} itemgenAgentProvisioner`,
            `project ${env.project} roles/logging.logWriter`,
            `project ${env.project} roles/monitoring.metricWriter`,
          ]
        : []),
    ].sort(),
    'serviceAccount:itemgen-nodes': [
      `project ${env.project} roles/container.defaultNodeServiceAccount`,
      `repository ${p}-images roles/artifactregistry.reader`,
      `repository ${p}-mirror roles/artifactregistry.reader`,
    ],
    // Environments promoted from this one copy its images by digest, as their own deployer.
    ...Object.fromEntries(
      Object.values(environments)
        .filter((other) => other.imagesFrom === env.name)
        .map((other) => [`serviceAccount:${serviceAccountEmail(other, 'deployer')}`, [`repository ${p}-images roles/artifactregistry.reader`]]),
    ),
    allUsers: [`run ${p}-gateway roles/run.invoker`],
    [`serviceAccount:${env.project}.svc.id.goog[${env.kubernetes.namespace}/${env.kubernetes.runnerServiceAccount}]`]: [
      'account itemgen-runner roles/iam.workloadIdentityUser',
    ],
    [`serviceAccount:${env.project}.svc.id.goog[${env.kubernetes.namespace}/${env.kubernetes.rabbitmqServiceAccount}]`]: [
      'account itemgen-rabbitmq roles/iam.workloadIdentityUser',
    ],
  };
}

test('each member holds exactly its grants, and nobody else holds any', () => {
  for (const [env, stack] of eachStack()) {
    assert.equal(Object.fromEntries(grants(stack)), expectedGrants(env));
  }
});

test('no owner, editor, admin or basic role anywhere; IAM only added to, never set wholesale', () => {
  for (const [, stack] of eachStack()) {
    const types = Object.keys(stack.resource);
    assert.equal(types.filter((t) => /_iam_(binding|policy)$/.test(t)), []);
    assert.equal(types.filter((t) => t.endsWith('_iam_member')).sort(), Object.keys(IAM_MEMBERS).sort());
    const roles = [...JSON.stringify(stack).matchAll(/"role":"([^"]+)"/g)].map((m) => m[1]!);
    const grantCount = Object.keys(IAM_MEMBERS).reduce((n, t) => n + resources(stack, t).length, 0);
    assert.is(roles.length, grantCount);
    for (const role of roles) {
      assert.not.match(role, /^roles\/(owner|editor|viewer)$/);
      assert.not.match(role, /admin/i);
    }
  }
});

test('one account per workload, the ids k8s/ annotates with; GKE nodes have their own', () => {
  for (const [, stack] of eachStack()) {
    const ids = resources(stack, 'google_service_account').map((a) => a.account_id).sort();
    // The delivery accounts (jenkins, review, terraform, planner) are the bootstrap's, not Terraform's.
    assert.equal(ids, ['itemgen-deployer', 'itemgen-gateway', 'itemgen-nodes', 'itemgen-rabbitmq', 'itemgen-runner']);
  }
});

test('Workload Identity bindings wait for the cluster (its identity pool exists only then)', () => {
  for (const [, stack] of eachStack()) {
    const bindings = resources(stack, 'google_service_account_iam_member').filter((b) => b.role === 'roles/iam.workloadIdentityUser');
    assert.is(bindings.length, 2);
    for (const b of bindings) assert.ok(b.depends_on.some((d: string) => d.startsWith('google_container_cluster.')));
  }
});

test('outputs hold names and addresses, nothing secret; the CI home\'s name its Jenkins VM and agent template', () => {
  for (const [env, stack] of eachStack()) {
    const outputs = stack.output ?? {};
    assert.equal(Object.keys(outputs).sort(), [
      'cluster_name',
      'database_instance',
      'deployer_email',
      'gateway_service',
      'gateway_url',
      'image_bucket',
      'image_repository',
      ...(env.name === ci.home ? ['jenkins_instance'] : []),
      'mirror_repository',
      'model_bucket',
      'rabbitmq_address',
      ...(env.name === ci.home ? ['review_agent_template'] : []),
    ]);
    assert.is(resolve(stack, outputs.deployer_email!.value), 'itemgen-deployer');
    for (const [name, output] of Object.entries(outputs)) {
      const value = JSON.stringify(output.value);
      assert.not.match(value, /secret|password|google_sql_user|token/i, name);
      assert.match(value, /^"\$\{google_[a-z0-9_]+\.[A-Za-z0-9_-]+\.[a-z_]+\}"$/, name);
    }
  }
});

test('state in the project\'s tfstate bucket, one prefix per environment', () => {
  const prefixes = new Set<string>();
  for (const [env, stack] of eachStack()) {
    const gcs = stack.terraform.backend.gcs;
    assert.is(gcs.bucket, `${env.project}-tfstate`);
    assert.ok(gcs.prefix.includes(env.name));
    prefixes.add(gcs.prefix);
  }
  assert.is(prefixes.size, 2);
});


test('prod deploys the images dev tested: its deployer may read dev\'s repository, and no other environment\'s', () => {
  assert.is(environments.prod.imagesFrom, 'dev');
  const stacks = new Map(eachStack().map(([env, stack]) => [env.name, stack]));
  const readers = (name: 'dev' | 'prod') =>
    resources(stacks.get(name)!, 'google_artifact_registry_repository_iam_member')
      .filter((r) => r.role === 'roles/artifactregistry.reader')
      .map((r) => resolve(stacks.get(name)!, r.member));
  assert.ok(readers('dev').includes(`serviceAccount:${serviceAccountEmail(environments.prod, 'deployer')}`));
  assert.not.ok(readers('prod').some((m) => m.includes('itemgen-dev')), 'nothing is copied out of prod');
});

test.run();
