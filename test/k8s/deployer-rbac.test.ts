// Criterion 5: what CI's deploy identity (the Google account itemgen-deployer, IAM role
// roles/container.clusterViewer only) may do in the cluster comes from these RBAC objects alone.
// The kinds it may apply are derived here from the synthesized objects, so a new kind in k8s/dist
// fails this test until the deployer's Role says whether CI may apply it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { serviceAccountEmail } from '../../infra/environments.ts';
import { eachEnvironment, ofKind, one, type Manifest } from '../helpers/manifests.ts';

const APPLY_VERBS = ['get', 'list', 'watch', 'create', 'patch'];
const READ_VERBS = ['get', 'list', 'watch'];
const NAME = 'itemgen-deployer';

/** The API group and plural resource of an object (every kind in dist pluralizes regularly; GMP's Rules kinds are plural already). */
function resourceOf(obj: Manifest): [group: string, resource: string] {
  const group = obj.apiVersion.includes('/') ? obj.apiVersion.split('/')[0]! : '';
  const kind = obj.kind.toLowerCase();
  return [group, kind.endsWith('s') ? kind : kind.endsWith('y') ? `${kind.slice(0, -1)}ies` : `${kind}s`];
}

type Rule = { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] };

/** Every [group, resource, verb, name?] a list of rules allows, one tuple per combination. */
function grants(rules: Rule[]): string[] {
  return rules.flatMap((r) =>
    r.apiGroups.flatMap((g) =>
      r.resources.flatMap((res) => r.verbs.flatMap((v) => (r.resourceNames ?? ['*']).map((n) => `${g}/${res}/${v}/${n}`))),
    ),
  );
}

function allows(rules: Rule[], group: string, resource: string, verb: string, name?: string): boolean {
  const held = new Set(grants(rules));
  return held.has(`${group}/${resource}/${verb}/*`) || (name !== undefined && held.has(`${group}/${resource}/${verb}/${name}`));
}

test('the Role grants exactly the apply verbs on exactly the namespaced kinds in dist, no Secrets, no delete', () => {
  for (const [env, objects] of eachEnvironment()) {
    const role = one(objects, 'Role', NAME);
    assert.is(role.metadata.namespace, env.kubernetes.namespace);
    const namespaced = objects.filter((o) => o.metadata.namespace !== undefined);
    const kinds = [...new Set(namespaced.map((o) => resourceOf(o).join('/')))].sort();
    const applyRules = (role.rules as Rule[]).filter((r) => JSON.stringify(r.verbs) === JSON.stringify(APPLY_VERBS));
    for (const r of applyRules) assert.is(r.resourceNames, undefined, 'apply rules are per kind (create cannot be limited by name)');
    const granted = applyRules.flatMap((r) => r.apiGroups.flatMap((g) => r.resources.map((res) => `${g}/${res}`))).sort();
    assert.equal(granted, kinds, `${env.name}: the kinds CI applies`);

    const all = grants(role.rules);
    for (const g of all) {
      assert.not.match(g, /^[^/]*\/secrets\//, `${env.name}: ${g}`);
      assert.not.ok(g.includes('*/') || g.split('/')[0] === '*', `${env.name}: wildcard ${g}`);
      assert.not.match(g, /\/(delete|deletecollection|update|bind|escalate|impersonate|\*)\//, `${env.name}: ${g}`);
    }
    for (const r of role.rules as Rule[]) assert.ok(!r.resources.includes('*') && !r.verbs.includes('*'), JSON.stringify(r));
  }
});

test('the Role also lets kubectl rollout status and rollout undo read what they read', () => {
  for (const [, objects] of eachEnvironment()) {
    const rules = one(objects, 'Role', NAME).rules as Rule[];
    for (const [group, resource] of [
      ['apps', 'replicasets'],
      ['apps', 'controllerrevisions'],
      ['', 'pods'],
    ] as const) {
      for (const verb of READ_VERBS) assert.ok(allows(rules, group, resource, verb), `${group}/${resource} ${verb}`);
      assert.not.ok(allows(rules, group, resource, 'patch'), `${group}/${resource} is read only`);
    }
    assert.not.ok(allows(rules, '', 'pods', 'create'));
    assert.not.ok(allows(rules, '', 'pods/exec', 'create'));
  }
});

test('the deployer holds every permission of every Role and ClusterRole in dist, so it may apply them without escalate or bind', () => {
  for (const [env, objects] of eachEnvironment()) {
    const own = one(objects, 'Role', NAME).rules as Rule[];
    const ownCluster = one(objects, 'ClusterRole', NAME).rules as Rule[];
    for (const role of ofKind(objects, 'Role')) {
      for (const g of grants(role.rules)) {
        const [group, resource, verb, name] = g.split('/') as [string, string, string, string];
        assert.ok(allows(own, group, resource, verb, name === '*' ? undefined : name), `${env.name} Role/${role.metadata.name}: ${g}`);
      }
    }
    for (const role of ofKind(objects, 'ClusterRole')) {
      for (const g of grants(role.rules)) {
        const [group, resource, verb, name] = g.split('/') as [string, string, string, string];
        assert.ok(allows(ownCluster, group, resource, verb, name === '*' ? undefined : name), `${env.name} ClusterRole/${role.metadata.name}: ${g}`);
      }
    }
  }
});

test('cluster-scoped objects in dist (the Namespace, the deployer ClusterRole and its binding, the alerts) only by name, get and patch', () => {
  for (const [env, objects] of eachEnvironment()) {
    const clusterScoped = objects.filter((o) => o.metadata.namespace === undefined);
    assert.equal(
      clusterScoped.map((o) => `${o.kind}/${o.metadata.name}`),
      [`Namespace/${env.kubernetes.namespace}`, `ClusterRole/${NAME}`, `ClusterRoleBinding/${NAME}`, 'GlobalRules/itemgen-alerts'],
    );
    const rules = one(objects, 'ClusterRole', NAME).rules as Rule[];
    for (const r of rules) {
      assert.equal(r.verbs, ['get', 'patch'], JSON.stringify(r));
      assert.ok(r.resourceNames && r.resourceNames.length > 0, `${JSON.stringify(r)} is not limited by name`);
    }
    const expected = clusterScoped.map((o) => {
      const [group, resource] = resourceOf(o);
      return `${group}/${resource}/${o.metadata.name}`;
    });
    const granted = rules.flatMap((r) => r.apiGroups.flatMap((g) => r.resources.flatMap((res) => r.resourceNames!.map((n) => `${g}/${res}/${n}`))));
    assert.equal(granted.sort(), expected.sort());
  }
});

test('the bindings name the deployer Google account as a User, and nothing else', () => {
  for (const [env, objects] of eachEnvironment()) {
    const subject = [{ kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: serviceAccountEmail(env, 'deployer') }];
    assert.is(subject[0]!.name, `itemgen-deployer@${env.project}.iam.gserviceaccount.com`);
    const binding = one(objects, 'RoleBinding', NAME);
    assert.equal(binding.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: NAME });
    assert.equal(binding.subjects, subject);
    const clusterBinding = one(objects, 'ClusterRoleBinding', NAME);
    assert.equal(clusterBinding.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: NAME });
    assert.equal(clusterBinding.subjects, subject);
    // No other binding hands anything to a User or Group.
    for (const b of [...ofKind(objects, 'RoleBinding'), ...ofKind(objects, 'ClusterRoleBinding')]) {
      for (const s of b.subjects) if (s.kind !== 'ServiceAccount') assert.equal([s], subject, `${b.kind}/${b.metadata.name}`);
    }
  }
});

test('the deployer RBAC comes right after the Namespace, before the objects it lets CI apply', () => {
  for (const [, objects] of eachEnvironment()) {
    assert.equal(
      objects.slice(0, 5).map((o) => `${o.kind}/${o.metadata.name}`),
      ['Namespace/itemgen', `ClusterRole/${NAME}`, `ClusterRoleBinding/${NAME}`, `Role/${NAME}`, `RoleBinding/${NAME}`],
    );
  }
});

test.run();
