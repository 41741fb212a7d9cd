import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  bootstrapCustomRoles,
  customRoleName,
  planProjectRoles,
  stackProjectRoles,
  terraformProjectRoles,
  type ProjectGrant,
} from '../../infra/bootstrap.ts';
import { environments, type Environment } from '../../infra/environments.ts';
import { eachStack, resources } from '../helpers/terraform.ts';

// Every resource and data source type the stacks use: the role of `itemgen-terraform` that creates,
// changes and deletes it (IAM members: sets the resource's policy), and the role of
// `itemgen-planner` that refreshes it (IAM members: reads the policy). A custom role is named by its
// id (bootstrapCustomRoles). "doc" marks what Google's role reference states; the rest follows from
// the role's documented purpose and is checked by the first deploy plan and apply.
const MANAGE_AND_READ: Record<string, { manage: string; read: string }> = {
  // doc: artifactregistry.admin manages repositories and their IAM; reader gets/lists them.
  google_artifact_registry_repository: { manage: 'roles/artifactregistry.admin', read: 'roles/artifactregistry.reader' },
  google_artifact_registry_repository_iam_member: { manage: 'roles/artifactregistry.admin', read: 'roles/iam.securityReviewer' },
  // Creating the service also needs actAs on the gateway account: roles/iam.serviceAccountUser.
  google_cloud_run_v2_service: { manage: 'roles/run.admin', read: 'roles/run.viewer' },
  google_cloud_run_v2_service_iam_member: { manage: 'roles/run.admin', read: 'roles/iam.securityReviewer' },
  // doc: compute.networkAdmin is "networking resources, except for firewall rules and SSL
  // certificates"; compute.securityAdmin holds firewall rules; compute.viewer reads everything.
  google_compute_address: { manage: 'roles/compute.networkAdmin', read: 'roles/compute.viewer' },
  google_compute_firewall: { manage: 'roles/compute.securityAdmin', read: 'roles/compute.viewer' },
  google_compute_global_address: { manage: 'roles/compute.networkAdmin', read: 'roles/compute.viewer' },
  // The Jenkins VM and the agents' template; attaching their accounts: roles/iam.serviceAccountUser.
  google_compute_instance: { manage: 'roles/compute.instanceAdmin.v1', read: 'roles/compute.viewer' },
  google_compute_instance_template: { manage: 'roles/compute.instanceAdmin.v1', read: 'roles/compute.viewer' },
  google_compute_network: { manage: 'roles/compute.networkAdmin', read: 'roles/compute.viewer' },
  google_compute_router: { manage: 'roles/compute.networkAdmin', read: 'roles/compute.viewer' },
  google_compute_router_nat: { manage: 'roles/compute.networkAdmin', read: 'roles/compute.viewer' },
  google_compute_subnetwork: { manage: 'roles/compute.networkAdmin', read: 'roles/compute.viewer' },
  // Node pools run as the nodes' account: roles/iam.serviceAccountUser too.
  google_container_cluster: { manage: 'roles/container.clusterAdmin', read: 'roles/container.clusterViewer' },
  google_container_node_pool: { manage: 'roles/container.clusterAdmin', read: 'roles/container.clusterViewer' },
  google_monitoring_dashboard: { manage: 'roles/monitoring.dashboardEditor', read: 'roles/monitoring.dashboardViewer' },
  google_project_iam_custom_role: { manage: 'roles/iam.roleAdmin', read: 'roles/iam.roleViewer' },
  // Limited by the condition to stackProjectRoles().
  google_project_iam_member: { manage: 'roles/resourcemanager.projectIamAdmin', read: 'roles/iam.securityReviewer' },
  google_secret_manager_secret_iam_member: { manage: 'itemgenSecretIamAdmin', read: 'itemgenPlanReader' },
  google_service_account: { manage: 'roles/iam.serviceAccountAdmin', read: 'roles/iam.serviceAccountViewer' },
  google_service_account_iam_member: { manage: 'roles/iam.serviceAccountAdmin', read: 'roles/iam.securityReviewer' },
  // doc: services.connections.list needs servicenetworking.services.get (itemgenPlanReader);
  // the peering itself is compute.networkAdmin's.
  google_service_networking_connection: { manage: 'roles/servicenetworking.networksAdmin', read: 'itemgenPlanReader' },
  // doc: cloudsql.admin manages instances, databases and users; cloudsql.viewer reads them
  // (the user's password is write-only: nothing to read).
  google_sql_database: { manage: 'roles/cloudsql.admin', read: 'roles/cloudsql.viewer' },
  google_sql_database_instance: { manage: 'roles/cloudsql.admin', read: 'roles/cloudsql.viewer' },
  google_sql_user: { manage: 'roles/cloudsql.admin', read: 'roles/cloudsql.viewer' },
  // doc: storage.bucketViewer reads bucket metadata without objects.
  google_storage_bucket: { manage: 'roles/storage.admin', read: 'roles/storage.bucketViewer' },
  google_storage_bucket_iam_member: { manage: 'roles/storage.admin', read: 'roles/iam.securityReviewer' },
};

// Data sources are read by both: by terraform on apply, by the planner on plan.
const DATA_READ: Record<string, string> = {
  // doc: roles/browser holds resourcemanager.projects.get.
  google_project: 'roles/browser',
};

// Roles not tied to one type: acting as the accounts the stack attaches to what it creates, and
// the Service Usage checks the provider and scripts make.
const CROSS_CUTTING = {
  terraform: ['roles/iam.serviceAccountUser', 'roles/serviceusage.serviceUsageConsumer'],
  planner: ['roles/serviceusage.serviceUsageConsumer'],
};

/** Roles known to hold secretmanager.versions.access (doc: admin, secretAccessor; and the basic roles). */
const SECRET_ACCESSOR_ROLES = [
  'roles/owner',
  'roles/editor',
  'roles/secretmanager.admin',
  'roles/secretmanager.secretAccessor',
  'roles/secretmanager.secretVersionManager',
  'roles/secretmanager.editor',
];

const names = (env: Environment, grants: ProjectGrant[]) =>
  grants.map((g) => {
    const custom = bootstrapCustomRoles.find((r) => g.role === customRoleName(env, r.id));
    return custom ? custom.id : g.role;
  });

function typesOf(stacks: ReturnType<typeof eachStack>) {
  const resourceTypes = new Set<string>();
  const dataTypes = new Set<string>();
  for (const [, stack] of stacks) {
    for (const type of Object.keys(stack.resource)) resourceTypes.add(type);
    for (const type of Object.keys(stack.data ?? {})) dataTypes.add(type);
  }
  return { resourceTypes: [...resourceTypes].sort(), dataTypes: [...dataTypes].sort() };
}

test('every resource and data source type in a stack has a managing and a reading role (a new type needs an entry)', () => {
  const { resourceTypes, dataTypes } = typesOf(eachStack());
  assert.equal(resourceTypes, Object.keys(MANAGE_AND_READ).sort());
  assert.equal(dataTypes, Object.keys(DATA_READ).sort());
});

test('the terraform and planner accounts hold exactly the roles of the table, each one for a reason', () => {
  for (const [env] of eachStack()) {
    const terraform = names(env, terraformProjectRoles(env));
    const planner = names(env, planProjectRoles(env));
    const dataRoles = Object.values(DATA_READ);
    const expectTerraform = new Set([...Object.values(MANAGE_AND_READ).map((e) => e.manage), ...dataRoles, ...CROSS_CUTTING.terraform]);
    const expectPlanner = new Set([...Object.values(MANAGE_AND_READ).map((e) => e.read), ...dataRoles, ...CROSS_CUTTING.planner]);
    assert.equal([...terraform].sort(), [...expectTerraform].sort(), `${env.name}: terraform`);
    assert.equal([...planner].sort(), [...expectPlanner].sort(), `${env.name}: planner`);
    assert.is(new Set(terraform).size, terraform.length);
    assert.is(new Set(planner).size, planner.length);
  }
});

test('custom roles: each held by its account, exactly as the table uses them', () => {
  for (const [env] of eachStack()) {
    for (const role of bootstrapCustomRoles) {
      const holder = role.holder === 'terraform' ? terraformProjectRoles(env) : planProjectRoles(env);
      const other = role.holder === 'terraform' ? planProjectRoles(env) : terraformProjectRoles(env);
      assert.ok(holder.some((g) => g.role === customRoleName(env, role.id)), role.id);
      assert.not.ok(other.some((g) => g.role === customRoleName(env, role.id)), role.id);
    }
  }
});

test('no basic role (owner, editor, viewer) for either account', () => {
  for (const [env] of eachStack()) {
    for (const grant of [...terraformProjectRoles(env), ...planProjectRoles(env)]) {
      assert.not.match(grant.role, /^roles\/(owner|editor|viewer)$/);
    }
  }
});

test('the planner holds nothing that reads a secret\'s payload', () => {
  for (const [env] of eachStack()) {
    for (const grant of planProjectRoles(env)) {
      assert.not.ok(SECRET_ACCESSOR_ROLES.includes(grant.role), grant.role);
      // No Secret Manager role at all: a plan reads secret IAM policies only (itemgenPlanReader).
      assert.not.match(grant.role, /^roles\/secretmanager\./);
    }
    const planner = new Set(planProjectRoles(env).map((g) => g.role));
    for (const role of bootstrapCustomRoles.filter((r) => planner.has(customRoleName(env, r.id)))) {
      assert.not.ok(role.permissions.includes('secretmanager.versions.access'), role.id);
      for (const permission of role.permissions) assert.match(permission, /\.(get|list|getIamPolicy)$/, `${role.id}: ${permission}`);
    }
  }
  // Terraform's own custom role does not reach payloads either (its one secret is granted by bootstrap.sh).
  for (const role of bootstrapCustomRoles) assert.not.ok(role.permissions.includes('secretmanager.versions.access'), role.id);
});

test('Project IAM is delegated to terraform only for the roles the stack grants at project level (IAM condition)', () => {
  for (const [env, stack] of eachStack()) {
    const granted = [...new Set(resources(stack, 'google_project_iam_member').map((m) => m.role as string))]
      .map((role) => {
        // A custom role made in the stack is referred to by its name attribute: projects/<project>/roles/<id>.
        const custom = /^\$\{google_project_iam_custom_role\.([A-Za-z0-9_-]+)\.name\}$/.exec(role);
        return custom ? customRoleName(env, stack.resource.google_project_iam_custom_role![custom[1]!]!.role_id) : role;
      })
      .sort();
    assert.equal(stackProjectRoles(env), granted, env.name);

    const projectIam = terraformProjectRoles(env).filter((g) => g.role === 'roles/resourcemanager.projectIamAdmin');
    assert.is(projectIam.length, 1);
    const expression = projectIam[0]!.condition?.expression ?? '';
    const match = /^api\.getAttribute\('iam\.googleapis\.com\/modifiedGrantsByRole', \[\]\)\.hasOnly\(\[(.*)\]\)$/.exec(expression);
    assert.ok(match, expression);
    const listed = [...match![1]!.matchAll(/'([^']+)'/g)].map((m) => m[1]);
    assert.equal(listed, granted);
    // Nothing among them lets the holder act as or administer anything.
    for (const role of listed) assert.not.match(role!, /owner|editor|admin|serviceAccountUser|TokenCreator|securityAdmin/i);
    // Every other grant of terraform is unconditional.
    for (const grant of terraformProjectRoles(env).filter((g) => g.role !== 'roles/resourcemanager.projectIamAdmin')) assert.is(grant.condition, undefined, grant.role);
  }
});


test('README, Deploying, names every role a plan needs (the documented list is the list)', async () => {
  const { readFileSync } = await import('node:fs');
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const documented = readme.slice(readme.indexOf('What a\nplan needs'), readme.indexOf('which the test checks too'));
  assert.ok(documented.length > 0, 'README says what a plan needs');
  const named = new Set([...documented.matchAll(/`((?:roles\/)[\w.]+|itemgen\w+)`/g)].map((m) => m[1]!));
  const expected = planProjectRoles(environments.dev).map((g) => g.role.replace(/^projects\/[^/]+\/roles\//, ''));
  assert.equal([...named].sort(), [...expected].sort());
});

test.run();
