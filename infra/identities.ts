// Who is who: one Google service account per workload (gateway, runner, RabbitMQ, Jenkins) and one
// for GKE nodes, with the few project-wide roles any of them needs, and the Workload Identity
// bindings that let the runner's and RabbitMQ's Kubernetes service accounts act as theirs.
// Grants on a single resource (a secret, a bucket, the repository, the Cloud Run service) are made
// where that resource is, so each construct shows who may touch it.
import { ProjectIamMember } from '@cdktf/provider-google/lib/project-iam-member/index.js';
import { ServiceAccountIamMember } from '@cdktf/provider-google/lib/service-account-iam-member/index.js';
import { ServiceAccount } from '@cdktf/provider-google/lib/service-account/index.js';
import type { ITerraformDependable } from 'cdktf';
import { Construct } from 'constructs';
import { serviceAccountIds } from './environments.ts';

export type Workload = keyof typeof serviceAccountIds;

export interface IdentitiesProps {
  project: string;
}

/** The GKE nodes' account id; only infra knows it, so it is not among the shared serviceAccountIds. */
const NODES_ACCOUNT_ID = 'itemgen-nodes';

export class Identities extends Construct {
  readonly accounts: Record<Workload | 'nodes', ServiceAccount>;

  constructor(scope: Construct, id: string, props: IdentitiesProps) {
    super(scope, id);
    const { project } = props;
    const account = (key: Workload | 'nodes', accountId: string, description: string) =>
      new ServiceAccount(this, key, { accountId, displayName: `itemgen ${key}`, description });

    this.accounts = {
      gateway: account('gateway', serviceAccountIds.gateway, 'Cloud Run gateway: database, queue, signed image links'),
      runner: account('runner', serviceAccountIds.runner, 'GPU runner pods (Workload Identity): model downloads, image uploads'),
      // Holds no role: RabbitMQ calls no Google API. It exists so the account k8s/ annotates
      // RabbitMQ's Kubernetes service account with is a real, powerless one.
      rabbitmq: account('rabbitmq', serviceAccountIds.rabbitmq, 'RabbitMQ pods (Workload Identity): no Google API access'),
      jenkins: account('jenkins', serviceAccountIds.jenkins, 'Jenkins VM: pushes images, deploys the gateway and manifests'),
      deployer: account('deployer', serviceAccountIds.deployer, 'CI deploys: image pushes, gateway revisions, manifests (impersonated, no key)'),
      nodes: account('nodes', NODES_ACCOUNT_ID, 'GKE nodes: logs, metrics, image pulls'),
    };

    const projectRoles: [Workload | 'nodes', string[]][] = [
      // What a node needs for itself; image pulls are granted on the repository only (registry.ts).
      ['nodes', ['roles/logging.logWriter', 'roles/monitoring.metricWriter']],
      // Applying manifests to the cluster. GKE has no per-cluster IAM, and the project holds one
      // cluster; in-cluster RBAC is where this could be narrowed to the itemgen namespace.
      ['jenkins', ['roles/container.developer', 'roles/logging.logWriter', 'roles/monitoring.metricWriter']],
    ];
    for (const [who, roles] of projectRoles) {
      for (const role of roles) {
        new ProjectIamMember(this, `${who}-${role.replace('roles/', '')}`, {
          project,
          role,
          member: this.member(who),
        });
      }
    }

    // V4 signed image links are signed by the IAM Credentials signBlob API (Cloud Run holds no
    // private key); the gateway may sign as itself and as nobody else.
    new ServiceAccountIamMember(this, 'gateway-signs-as-itself', {
      serviceAccountId: this.accounts.gateway.name,
      role: 'roles/iam.serviceAccountTokenCreator',
      member: this.member('gateway'),
    });
    // Deploying a gateway revision means running it as the gateway's account.
    new ServiceAccountIamMember(this, 'jenkins-deploys-as-gateway', {
      serviceAccountId: this.accounts.gateway.name,
      role: 'roles/iam.serviceAccountUser',
      member: this.member('jenkins'),
    });
  }

  /** The IAM member string of an account. */
  member(who: Workload | 'nodes'): string {
    return `serviceAccount:${this.accounts[who].email}`;
  }
}

export interface WorkloadIdentityProps {
  project: string;
  namespace: string;
  /** Google service account → the Kubernetes service account (in `namespace`) that may act as it. */
  bindings: { name: string; account: ServiceAccount; kubernetesServiceAccount: string }[];
  /** The cluster: its identity pool `${project}.svc.id.goog` exists only once it does. */
  cluster: ITerraformDependable;
}

export class WorkloadIdentity extends Construct {
  constructor(scope: Construct, id: string, props: WorkloadIdentityProps) {
    super(scope, id);
    for (const { name, account, kubernetesServiceAccount } of props.bindings) {
      new ServiceAccountIamMember(this, name, {
        serviceAccountId: account.name,
        role: 'roles/iam.workloadIdentityUser',
        member: `serviceAccount:${props.project}.svc.id.goog[${props.namespace}/${kubernetesServiceAccount}]`,
        dependsOn: [props.cluster],
      });
    }
  }
}
