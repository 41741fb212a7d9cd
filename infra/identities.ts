// Who is who: one Google service account per workload (gateway, runner, RabbitMQ), the deployer CI
// impersonates, and one for GKE nodes, with the few project-wide roles any of them needs, and the
// Workload Identity bindings that let the runner's and RabbitMQ's Kubernetes service accounts act
// as theirs. The delivery accounts (terraform, planner, jenkins, review) are made at bootstrap
// (bootstrap.ts) and only referred to here, by email: Terraform cannot create the identity that
// runs it, and the Jenkins VM's account must exist before the VM that first applies this stack.
// Grants on a single resource (a secret, a bucket, the repository, the Cloud Run service) are made
// where that resource is, so each construct shows who may touch it.
import { ProjectIamMember } from '@cdktf/provider-google/lib/project-iam-member/index.js';
import { ServiceAccountIamMember } from '@cdktf/provider-google/lib/service-account-iam-member/index.js';
import { ServiceAccount } from '@cdktf/provider-google/lib/service-account/index.js';
import type { ITerraformDependable } from 'cdktf';
import { Construct } from 'constructs';
import { serviceAccountIds } from './environments.ts';

/** The accounts this stack makes; `jenkins` is the bootstrap's (deliveryAccountIds). */
export type Workload = Exclude<keyof typeof serviceAccountIds, 'jenkins'>;

export interface IdentitiesProps {
  project: string;
  /** Email of the Jenkins VM's account (bootstrap-made, in the CI home): it impersonates the deployer. */
  jenkins: string;
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
      deployer: account('deployer', serviceAccountIds.deployer, 'CI deploys: image pushes, gateway revisions, manifests (impersonated, no key)'),
      nodes: account('nodes', NODES_ACCOUNT_ID, 'GKE nodes: logs, metrics, image pulls'),
    };

    const projectRoles: [Workload | 'nodes', string[]][] = [
      // GKE's role for a node's own account (logs, metrics, autoscaler metadata); image pulls are
      // granted on the repositories only (registry.ts).
      ['nodes', ['roles/container.defaultNodeServiceAccount']],
      // Cluster credentials (get-credentials, the DNS endpoint) and nothing inside the cluster:
      // what the deployer may do there is Kubernetes RBAC, limited to the itemgen namespace (k8s/).
      ['deployer', ['roles/container.clusterViewer']],
      // The Managed Prometheus sidecar of the gateway's instances writes its series as the gateway.
      ['gateway', ['roles/monitoring.metricWriter', 'roles/cloudtrace.agent']],
      // Spans of the generations it runs, to Cloud Trace (infra/environments.ts tracingSettings).
      ['runner', ['roles/cloudtrace.agent']],
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
    new ServiceAccountIamMember(this, 'deployer-deploys-as-gateway', {
      serviceAccountId: this.accounts.gateway.name,
      role: 'roles/iam.serviceAccountUser',
      member: this.member('deployer'),
    });
    // Main's deploy stages (the Jenkins VM) act as the deployer by impersonation: short-lived
    // tokens, no key file. Review agents cannot (their account is not granted).
    new ServiceAccountIamMember(this, 'jenkins-impersonates-deployer', {
      serviceAccountId: this.accounts.deployer.name,
      role: 'roles/iam.serviceAccountTokenCreator',
      member: `serviceAccount:${props.jenkins}`,
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
