// What CI may do in the cluster. CI deploys as the Google account itemgen-deployer (impersonated by
// the Jenkins VM's account; no key), whose only IAM role on the project is
// roles/container.clusterViewer: enough to fetch the cluster's credentials, nothing inside it. All it
// may do in the cluster is granted here, by RBAC, to that account as a User (GKE authenticates a
// Google account by its email):
// - in the namespace, server-side apply (`kubectl apply --server-side`: get, and patch, which creates
//   an object that does not exist yet, hence create) and the watch of `kubectl rollout status`
//   (get, list, watch) on exactly the kinds k8s/dist holds there; not Secrets (CI never writes them,
//   so it may not read them either: they are the cluster-secrets step's, run by an admin);
// - read access to what `rollout status` and `rollout undo` look at: ReplicaSets (a Deployment's
//   revisions), ControllerRevisions (a StatefulSet's), Pods (why a rollout is stuck);
// - cluster-wide, only its own namespace, its own ClusterRole and binding and the alerts' GlobalRules,
//   by name, get and patch: what applying them again needs. The Namespace exists before CI first runs (k8s/README.md), and
//   `create` cannot be limited by name, so CI cannot create namespaces.
// No delete anywhere: server-side apply never deletes (no --prune), and an object removed from
// k8s/dist is deleted by an admin. No update: nothing CI runs issues a PUT.
// Creating or changing a Role or a binding is refused by the API unless the requester holds every
// permission it grants or has `escalate` / `bind` on it. The deployer gets neither verb: it holds
// every permission of each Role and ClusterRole in k8s/dist (RabbitMQ's peer discovery read of one
// Endpoints object included; test/k8s/deployer-rbac.test.ts checks it), so the API lets it apply them
// as they are and nothing more. In particular it cannot grant itself anything new: a change that
// adds to these rules is applied by a cluster admin first (k8s/README.md).
import { ApiObject, JsonPatch } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { serviceAccountEmail, type Environment } from '../infra/environments.ts';
import { GLOBAL_RULES_NAME } from './monitoring.ts';

export const DEPLOYER_RBAC_NAME = 'itemgen-deployer';
const RBAC_GROUP = 'rbac.authorization.k8s.io';

/** The namespaced kinds of k8s/dist, by API group: what CI applies. */
const APPLIED_KINDS: { apiGroup: string; resources: string[] }[] = [
  { apiGroup: '', resources: ['configmaps', 'serviceaccounts', 'services'] },
  { apiGroup: 'apps', resources: ['deployments', 'statefulsets'] },
  { apiGroup: 'keda.sh', resources: ['scaledobjects', 'triggerauthentications'] },
  { apiGroup: 'monitoring.googleapis.com', resources: ['podmonitorings'] },
  { apiGroup: 'networking.k8s.io', resources: ['networkpolicies'] },
  { apiGroup: 'policy', resources: ['poddisruptionbudgets'] },
  { apiGroup: RBAC_GROUP, resources: ['rolebindings', 'roles'] },
];
const APPLY_VERBS = ['get', 'list', 'watch', 'create', 'patch'];
const READ_VERBS = ['get', 'list', 'watch'];

export interface DeployerRbacProps {
  env: Environment;
  /** Rules of the other Roles in the namespace, which the deployer must hold to apply them. */
  heldRules: kplus.k8s.PolicyRule[];
}

export class DeployerRbac extends Construct {
  constructor(scope: Construct, id: string, props: DeployerRbacProps) {
    super(scope, id);
    const { env } = props;
    const subjects = [{ kind: 'User', apiGroup: RBAC_GROUP, name: serviceAccountEmail(env, 'deployer') }];
    const metadata = { name: DEPLOYER_RBAC_NAME };

    const clusterRole = new kplus.k8s.KubeClusterRole(this, 'cluster-role', {
      metadata,
      rules: [
        { apiGroups: [''], resources: ['namespaces'], resourceNames: [env.kubernetes.namespace], verbs: ['get', 'patch'] },
        { apiGroups: [RBAC_GROUP], resources: ['clusterrolebindings', 'clusterroles'], resourceNames: [DEPLOYER_RBAC_NAME], verbs: ['get', 'patch'] },
        // The alert rules (monitoring.ts): made once by a cluster admin, kept current by CI.
        { apiGroups: ['monitoring.googleapis.com'], resources: ['globalrules'], resourceNames: [GLOBAL_RULES_NAME], verbs: ['get', 'patch'] },
      ],
    });
    const clusterBinding = new kplus.k8s.KubeClusterRoleBinding(this, 'cluster-role-binding', {
      metadata,
      roleRef: { apiGroup: RBAC_GROUP, kind: 'ClusterRole', name: DEPLOYER_RBAC_NAME },
      subjects,
    });
    // Cluster-scoped: the chart's namespace does not apply.
    for (const obj of [clusterRole, clusterBinding]) ApiObject.of(obj).addJsonPatch(JsonPatch.remove('/metadata/namespace'));

    new kplus.k8s.KubeRole(this, 'role', {
      metadata,
      rules: [
        ...APPLIED_KINDS.map(({ apiGroup, resources }) => ({ apiGroups: [apiGroup], resources, verbs: APPLY_VERBS })),
        { apiGroups: ['apps'], resources: ['controllerrevisions', 'replicasets'], verbs: READ_VERBS },
        { apiGroups: [''], resources: ['pods'], verbs: READ_VERBS },
        ...props.heldRules,
      ],
    });
    new kplus.k8s.KubeRoleBinding(this, 'role-binding', {
      metadata,
      roleRef: { apiGroup: RBAC_GROUP, kind: 'Role', name: DEPLOYER_RBAC_NAME },
      subjects,
    });
  }
}
