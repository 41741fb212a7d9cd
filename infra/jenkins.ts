// Delivery, in the CI home's project only (environments.ts `ci.home`; other environments run no
// Jenkins of their own): the Jenkins VM that runs the controller and main's deploy stages, and the
// instance template of the ephemeral agents pull requests run on.
//
// The VM: no public address (it reaches GitHub and registries through Cloud NAT), a shielded boot,
// OS Login, the bootstrap-made account `itemgen-jenkins` (which may impersonate each environment's
// terraform and deployer accounts, never holds a key), and reachable only through Identity-Aware
// Proxy TCP forwarding, for SSH and for the web UI alike.
//
// Review agents (label ci.reviewLabel): one VM per build, made by Jenkins' Google Compute Engine
// plugin from the template here and deleted after it, so nothing a pull request's code leaves
// behind outlives it. They run as `itemgen-review`, which may impersonate the planners only (no
// secret, no deploy right), in a subnet of their own, reachable only by the controller over SSH.
import { ComputeFirewall } from '@cdktf/provider-google/lib/compute-firewall/index.js';
import { ComputeInstanceTemplate } from '@cdktf/provider-google/lib/compute-instance-template/index.js';
import { ComputeInstance } from '@cdktf/provider-google/lib/compute-instance/index.js';
import type { ComputeNetwork } from '@cdktf/provider-google/lib/compute-network/index.js';
import type { ComputeSubnetwork } from '@cdktf/provider-google/lib/compute-subnetwork/index.js';
import { ProjectIamCustomRole } from '@cdktf/provider-google/lib/project-iam-custom-role/index.js';
import { ProjectIamMember } from '@cdktf/provider-google/lib/project-iam-member/index.js';
import { ServiceAccountIamMember } from '@cdktf/provider-google/lib/service-account-iam-member/index.js';
import { Construct } from 'constructs';

/** Where IAP's TCP forwarding connects from (Google's documented range). */
export const IAP_RANGE = '35.235.240.0/20';

/**
 * What the Google Compute Engine plugin does with the controller's account: create an agent from
 * the template (its disk, its subnet, its metadata with the plugin's one-time SSH key, its labels,
 * its account), find its agents by label, read the SSH host key the agent publishes as a guest
 * attribute (verified before connecting, plugin ≥ 4.2), and delete them. The plugin documents
 * roles/compute.instanceAdmin.v1 (and networkAdmin); this is that role cut to those calls.
 */
export const AGENT_PROVISIONER_PERMISSIONS = [
  'compute.disks.create',
  'compute.instanceTemplates.get',
  'compute.instanceTemplates.list',
  'compute.instanceTemplates.useReadOnly',
  'compute.instances.create',
  'compute.instances.delete',
  'compute.instances.get',
  'compute.instances.getGuestAttributes',
  'compute.instances.list',
  'compute.instances.setLabels',
  'compute.instances.setMetadata',
  'compute.instances.setServiceAccount',
  'compute.machineTypes.get',
  'compute.machineTypes.list',
  'compute.regions.list',
  'compute.subnetworks.use',
  'compute.zoneOperations.get',
  'compute.zones.get',
  'compute.zones.list',
] as const;

export interface JenkinsProps {
  prefix: string;
  project: string;
  zone: string;
  vpc: ComputeNetwork;
  /** The controller's subnet. */
  subnet: ComputeSubnetwork;
  /** The review agents' subnet. */
  agentsSubnet: ComputeSubnetwork;
  /** Email of the Jenkins VM's account (bootstrap-made). */
  serviceAccount: string;
  /** Email of the review agents' account (bootstrap-made). */
  reviewAccount: string;
  /** Jenkins label of the review agents (the template's label, for the plugin's configuration). */
  reviewLabel: string;
  machineType?: string;
  diskGb?: number;
  /** Port of the web UI. */
  uiPort?: number;
}

export class Jenkins extends Construct {
  readonly instance: ComputeInstance;
  readonly reviewTemplate: ComputeInstanceTemplate;

  constructor(scope: Construct, id: string, props: JenkinsProps) {
    super(scope, id);
    const { machineType = 'e2-standard-4', diskGb = 100, uiPort = 8080, project } = props;
    const jenkinsMember = `serviceAccount:${props.serviceAccount}`;
    const shielded = { enableSecureBoot: true, enableVtpm: true, enableIntegrityMonitoring: true };

    this.instance = new ComputeInstance(this, 'vm', {
      name: `${props.prefix}-jenkins`,
      zone: props.zone,
      machineType,
      bootDisk: { initializeParams: { image: 'debian-cloud/debian-12', size: diskGb, type: 'pd-balanced' } },
      // No access_config: no external address.
      networkInterface: [{ subnetwork: props.subnet.id }],
      serviceAccount: { email: props.serviceAccount, scopes: ['cloud-platform'] },
      shieldedInstanceConfig: shielded,
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

    this.reviewTemplate = new ComputeInstanceTemplate(this, 'review-agent', {
      // A fixed name: the plugin's configuration refers to it. A change replaces the template;
      // running agents keep their own copy of its settings.
      name: `${props.prefix}-review-agent`,
      description: `Ephemeral Jenkins agents (label ${props.reviewLabel}) for pull requests`,
      machineType: 'e2-standard-4',
      labels: { 'jenkins-label': props.reviewLabel },
      disk: [{ boot: true, autoDelete: true, sourceImage: 'debian-cloud/debian-12', diskSizeGb: 50, diskType: 'pd-balanced' }],
      // No access_config: no external address; Cloud NAT serves the agents' subnet.
      networkInterface: [{ subnetwork: props.agentsSubnet.id }],
      serviceAccount: { email: props.reviewAccount, scopes: ['cloud-platform'] },
      shieldedInstanceConfig: shielded,
      // One build, then gone: Spot is fine (a preempted build is retried), and a stopped agent is
      // deleted rather than kept.
      scheduling: {
        provisioningModel: 'SPOT',
        preemptible: true,
        automaticRestart: false,
        onHostMaintenance: 'TERMINATE',
        instanceTerminationAction: 'DELETE',
      },
      metadata: {
        // Not OS Login: the plugin connects with a one-time key pair it writes into the agent's
        // own metadata, which OS Login ignores (jenkinsci/google-compute-engine-plugin issues 138,
        // 195, 527, open). What stands in for it: project-wide keys are refused, the key lives as
        // long as the agent, and only the controller's account may reach port 22 (below); no
        // person logs in to an agent.
        'enable-oslogin': 'FALSE',
        'block-project-ssh-keys': 'TRUE',
        // The agent publishes its SSH host key as a guest attribute; the plugin verifies it.
        'enable-guest-attributes': 'TRUE',
      },
    });

    // The controller talks to its agents over SSH inside the VPC; nothing else reaches them.
    new ComputeFirewall(this, 'agents-from-controller', {
      name: `${props.prefix}-review-agents-from-jenkins`,
      network: props.vpc.id,
      direction: 'INGRESS',
      sourceServiceAccounts: [props.serviceAccount],
      targetServiceAccounts: [props.reviewAccount],
      allow: [{ protocol: 'tcp', ports: ['22'] }],
    });

    const provisioner = new ProjectIamCustomRole(this, 'agent-provisioner-role', {
      roleId: 'itemgenAgentProvisioner',
      title: 'itemgen review agent provisioner',
      description: 'Create and delete the ephemeral review agents from their template (Jenkins GCE plugin)',
      permissions: [...AGENT_PROVISIONER_PERMISSIONS],
    });
    new ProjectIamMember(this, 'jenkins-provisions-agents', { project, role: provisioner.name, member: jenkinsMember });
    // The agents run as the review account: the controller may attach that account and no other.
    new ServiceAccountIamMember(this, 'jenkins-attaches-review-account', {
      serviceAccountId: `projects/${project}/serviceAccounts/${props.reviewAccount}`,
      role: 'roles/iam.serviceAccountUser',
      member: jenkinsMember,
    });
    // The VM's own logs and metrics (Ops Agent).
    for (const role of ['roles/logging.logWriter', 'roles/monitoring.metricWriter']) {
      new ProjectIamMember(this, `jenkins-${role.replace('roles/', '')}`, { project, role, member: jenkinsMember });
    }
  }
}
