// The Jenkins VM that builds, tests and deploys: no public address (it reaches GitHub and registries
// through Cloud NAT), a shielded boot, OS Login, its own service account, and reachable only
// through Identity-Aware Proxy TCP forwarding, for SSH and for the web UI alike.
import { ComputeFirewall } from '@cdktf/provider-google/lib/compute-firewall/index.js';
import { ComputeInstance } from '@cdktf/provider-google/lib/compute-instance/index.js';
import type { ComputeNetwork } from '@cdktf/provider-google/lib/compute-network/index.js';
import type { ComputeSubnetwork } from '@cdktf/provider-google/lib/compute-subnetwork/index.js';
import { Construct } from 'constructs';

/** Where IAP's TCP forwarding connects from (Google's documented range). */
export const IAP_RANGE = '35.235.240.0/20';

export interface JenkinsProps {
  prefix: string;
  zone: string;
  vpc: ComputeNetwork;
  subnet: ComputeSubnetwork;
  /** Email of Jenkins's service account. */
  serviceAccount: string;
  machineType?: string;
  diskGb?: number;
  /** Port of the web UI. */
  uiPort?: number;
}

export class Jenkins extends Construct {
  readonly instance: ComputeInstance;

  constructor(scope: Construct, id: string, props: JenkinsProps) {
    super(scope, id);
    const { machineType = 'e2-standard-4', diskGb = 100, uiPort = 8080 } = props;

    this.instance = new ComputeInstance(this, 'vm', {
      name: `${props.prefix}-jenkins`,
      zone: props.zone,
      machineType,
      bootDisk: { initializeParams: { image: 'debian-cloud/debian-12', size: diskGb, type: 'pd-balanced' } },
      // No access_config: no external address.
      networkInterface: [{ subnetwork: props.subnet.id }],
      serviceAccount: { email: props.serviceAccount, scopes: ['cloud-platform'] },
      shieldedInstanceConfig: { enableSecureBoot: true, enableVtpm: true, enableIntegrityMonitoring: true },
      // SSH keys come from OS Login (IAM), never from project metadata.
      metadata: { 'enable-oslogin': 'TRUE', 'block-project-ssh-keys': 'TRUE' },
      allowStoppingForUpdate: true,
    });

    // Without an external address nothing outside the VPC reaches the VM except through IAP, whose
    // tunnels require roles/iap.tunnelResourceAccessor; the admin ranges therefore need no rule.
    new ComputeFirewall(this, 'from-iap', {
      name: `${props.prefix}-jenkins-from-iap`,
      network: props.vpc.id,
      direction: 'INGRESS',
      sourceRanges: [IAP_RANGE],
      targetServiceAccounts: [props.serviceAccount],
      allow: [{ protocol: 'tcp', ports: ['22', String(uiPort)] }],
    });
  }
}
