import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject';
import { TriggerAuthentication } from '@kubernetes-models/keda/keda.sh/v1alpha1/TriggerAuthentication';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import { ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import { Role } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import { RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { containers, eachEnvironment } from '../helpers/manifests.ts';

/** A Prometheus duration, as the GMP CRDs' `format: duration` wants it. */
const DURATION = /^([0-9]+(ms|s|m|h|d|w|y))+$/;

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(what);
}
function only(obj: Record<string, unknown>, keys: string[], at: string): void {
  for (const k of Object.keys(obj)) check(keys.includes(k), `${at}: unknown field ${k}`);
}
const stringMap = (v: unknown) => typeof v === 'object' && v !== null && Object.values(v).every((x) => typeof x === 'string');

/**
 * Google Managed Prometheus' kinds (monitoring.googleapis.com/v1), which kubernetes-models has no
 * model of: the fields the CRDs require and the types they give, checked by hand for what
 * k8s/monitoring.ts writes; a field the CRD does not have fails too.
 */
class PodMonitoringModel {
  constructor(private readonly obj: any) {}
  validate(): void {
    const spec = this.obj.spec;
    only(spec, ['selector', 'endpoints'], 'spec');
    check(stringMap(spec.selector?.matchLabels) && Object.keys(spec.selector.matchLabels).length > 0, 'spec.selector.matchLabels');
    check(Array.isArray(spec.endpoints) && spec.endpoints.length > 0, 'spec.endpoints');
    for (const [i, e] of (spec.endpoints as any[]).entries()) {
      only(e, ['port', 'path', 'interval', 'params', 'timeout'], `spec.endpoints[${i}]`);
      check(typeof e.port === 'string' || Number.isInteger(e.port), `spec.endpoints[${i}].port`);
      check(DURATION.test(e.interval), `spec.endpoints[${i}].interval`);
      check(e.path === undefined || (typeof e.path === 'string' && e.path.startsWith('/')), `spec.endpoints[${i}].path`);
      check(e.params === undefined || Object.values(e.params).every((v) => Array.isArray(v) && v.every((x) => typeof x === 'string')), `spec.endpoints[${i}].params`);
    }
  }
}

class GlobalRulesModel {
  constructor(private readonly obj: any) {}
  validate(): void {
    const spec = this.obj.spec;
    only(spec, ['groups'], 'spec');
    check(Array.isArray(spec.groups), 'spec.groups');
    for (const g of spec.groups as any[]) {
      only(g, ['name', 'interval', 'rules'], `group ${g.name}`);
      check(typeof g.name === 'string' && DURATION.test(g.interval), `group ${g.name}: name, interval`);
      check(Array.isArray(g.rules) && g.rules.length > 0, `group ${g.name}: rules`);
      for (const r of g.rules as any[]) {
        only(r, ['alert', 'record', 'expr', 'for', 'labels', 'annotations'], `rule ${r.alert}`);
        check(typeof r.expr === 'string' && r.expr.length > 0, `rule ${r.alert}: expr`);
        check((r.alert === undefined) !== (r.record === undefined), `rule ${r.alert}: exactly one of alert and record`);
        check(r.for === undefined || DURATION.test(r.for), `rule ${r.alert}: for`);
        check(r.labels === undefined || stringMap(r.labels), `rule ${r.alert}: labels`);
        check(r.annotations === undefined || (stringMap(r.annotations) && r.alert !== undefined), `rule ${r.alert}: annotations`);
      }
    }
  }
}

/** The offline schema of each kind the manifests may contain (Kubernetes 1.3x, KEDA 2.x, GMP v1). */
const models: Record<string, new (data: any) => { validate(): void }> = {
  'v1/Namespace': Namespace,
  'v1/ServiceAccount': ServiceAccount,
  'v1/ConfigMap': ConfigMap,
  'v1/Service': Service,
  'rbac.authorization.k8s.io/v1/Role': Role,
  'rbac.authorization.k8s.io/v1/RoleBinding': RoleBinding,
  'rbac.authorization.k8s.io/v1/ClusterRole': ClusterRole,
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': ClusterRoleBinding,
  'apps/v1/StatefulSet': StatefulSet,
  'apps/v1/Deployment': Deployment,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'keda.sh/v1alpha1/ScaledObject': ScaledObject,
  'keda.sh/v1alpha1/TriggerAuthentication': TriggerAuthentication,
  'monitoring.googleapis.com/v1/PodMonitoring': PodMonitoringModel,
  'monitoring.googleapis.com/v1/GlobalRules': GlobalRulesModel,
};

/** JSON paths of every null in a value. */
function nulls(value: unknown, at = ''): string[] {
  if (value === null) return [at || '/'];
  if (typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([key, v]) => nulls(v, `${at}/${key}`));
}

test('every object of every environment validates against its schema', () => {
  for (const [env, objects] of eachEnvironment()) {
    assert.ok(objects.length > 0);
    for (const obj of objects) {
      const id = `${env.name} ${obj.kind}/${obj.metadata.name}`;
      const Model = models[`${obj.apiVersion}/${obj.kind}`];
      assert.ok(Model, `${id}: no schema for ${obj.apiVersion}`);
      try {
        new Model(obj).validate();
      } catch (err) {
        assert.unreachable(`${id}: ${(err as Error).message}`);
      }
    }
  }
});

test('the GMP checks refuse what the CRDs refuse (they can fail)', () => {
  const rules = (rule: Record<string, unknown>) => ({ spec: { groups: [{ name: 'g', interval: '30s', rules: [rule] }] } });
  assert.throws(() => new GlobalRulesModel(rules({ alert: 'A', expr: 'up', for: 'five minutes' })).validate(), /for/);
  assert.throws(() => new GlobalRulesModel(rules({ alert: 'A', record: 'a:b', expr: 'up' })).validate(), /exactly one/);
  assert.throws(() => new GlobalRulesModel(rules({ alert: 'A', expr: 'up', severity: 'page' })).validate(), /unknown field severity/);
  const monitoring = (endpoint: Record<string, unknown>) => ({ spec: { selector: { matchLabels: { a: 'b' } }, endpoints: [endpoint] } });
  assert.throws(() => new PodMonitoringModel(monitoring({ port: 'health', interval: '30' })).validate(), /interval/);
  assert.throws(() => new PodMonitoringModel(monitoring({ port: 'health', interval: '30s', params: { family: 'x' } })).validate(), /params/);
  new PodMonitoringModel(monitoring({ port: 8081, interval: '30s', path: '/metrics' })).validate();
});

test('no null anywhere: every patched value (quantities above all) synthesized', () => {
  for (const [env, objects] of eachEnvironment()) {
    for (const obj of objects) assert.equal(nulls(obj), [], `${env.name} ${obj.kind}/${obj.metadata.name}`);
  }
});

/** Kinds without a namespace; every other object must be in the environment's. */
const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'GlobalRules']);

test('every object is named once per kind and lives in the environment namespace (cluster-scoped kinds in none)', () => {
  for (const [env, objects] of eachEnvironment()) {
    const ids = objects.map((o) => `${o.kind}/${o.metadata.name}`);
    assert.equal(ids, [...new Set(ids)]);
    assert.equal(ids[0], `Namespace/${env.kubernetes.namespace}`, 'the Namespace comes first');
    for (const obj of objects) {
      const expected = CLUSTER_SCOPED.has(obj.kind) ? undefined : env.kubernetes.namespace;
      assert.is(obj.metadata.namespace, expected, `${obj.kind}/${obj.metadata.name}`);
    }
  }
});

test('no secret is written literally: secret-looking variables are references, no Secret object exists', () => {
  const secretish = /PASS|COOKIE|TOKEN|SECRET|KEY|AMQP_URL|CREDENTIAL/i;
  for (const [env, objects] of eachEnvironment()) {
    assert.equal(objects.filter((o) => o.kind === 'Secret'), []);
    for (const c of containers(objects)) {
      for (const v of c.env ?? []) {
        if (secretish.test(v.name)) {
          assert.is(v.value, undefined, `${env.name} ${c.name}: ${v.name} has a literal value`);
          assert.ok(v.valueFrom?.secretKeyRef, `${env.name} ${c.name}: ${v.name} is not a Secret reference`);
        }
      }
    }
    for (const cm of objects.filter((o) => o.kind === 'ConfigMap')) {
      for (const key of Object.keys(cm.data)) assert.not.match(key, secretish, `${env.name} ConfigMap ${cm.metadata.name} holds ${key}`);
    }
  }
});

test('every container fits the namespace Pod Security level: restricted', () => {
  for (const [env, objects] of eachEnvironment()) {
    const namespace = objects.find((o) => o.kind === 'Namespace')!;
    assert.is(namespace.metadata.labels['pod-security.kubernetes.io/enforce'], 'restricted');
    for (const c of containers(objects)) {
      const ctx = c.securityContext;
      const id = `${env.name} ${c.name}`;
      assert.is(ctx.runAsNonRoot, true, id);
      assert.ok(ctx.runAsUser > 0, id);
      assert.is(ctx.allowPrivilegeEscalation, false, id);
      assert.equal(ctx.capabilities, { drop: ['ALL'] }, id);
      assert.equal(ctx.seccompProfile, { type: 'RuntimeDefault' }, id);
      assert.ok(c.resources?.requests && c.resources?.limits, `${id} has no resources`);
    }
  }
});

test.run();
