// Who may read which Secret Manager secret, as one table: each workload is granted the secrets it
// reads itself and no other. Values never pass through Terraform: the secrets and their versions are
// bootstrap-made, and Terraform reads none. Only the gateway reads Secret Manager at run time; runners and RabbitMQ get theirs from Kubernetes
// Secrets (k8s/secrets.ts).
import { SecretManagerSecretIamMember } from '@cdktf/provider-google/lib/secret-manager-secret-iam-member/index.js';
import { Construct } from 'constructs';

export interface SecretGrant {
  /** Stable name of the grant's resources (the secret's id without the environment prefix). */
  id: string;
  /** The secret's name, or a reference to a secret made in this stack. */
  secret: string;
  /** IAM members, by a stable label, that may read the secret's versions. */
  readers: Record<string, string>;
}

export class SecretAccess extends Construct {
  /** Every grant, for what must wait for them (a Cloud Run revision is refused a secret it cannot read yet). */
  readonly members: SecretManagerSecretIamMember[] = [];

  constructor(scope: Construct, id: string, props: { grants: SecretGrant[] }) {
    super(scope, id);
    for (const grant of props.grants) {
      for (const [who, member] of Object.entries(grant.readers)) {
        const iamMember = new SecretManagerSecretIamMember(this, `${grant.id}-${who}`, {
          secretId: grant.secret,
          role: 'roles/secretmanager.secretAccessor',
          member,
        });
        this.members.push(iamMember);
      }
    }
  }
}
