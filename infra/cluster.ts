// The GKE cluster RabbitMQ and the runners live in: private nodes, Workload Identity, a control
// plane reachable only from the admin ranges (and from inside the VPC), a small autoscaled system
// pool and a GPU pool that scales to zero and takes only pods that tolerate its taint.
import { ComputeFirewall } from '@cdktf/provider-google/lib/compute-firewall/index.js';
import { ContainerCluster } from '@cdktf/provider-google/lib/container-cluster/index.js';
import {
  ContainerNodePool,
  type ContainerNodePoolNodeConfig,
} from '@cdktf/provider-google/lib/container-node-pool/index.js';
import type { ComputeNetwork } from '@cdktf/provider-google/lib/compute-network/index.js';
import type { ComputeSubnetwork } from '@cdktf/provider-google/lib/compute-subnetwork/index.js';
import { Construct } from 'constructs';
import type { Environment } from './environments.ts';

export interface ClusterProps {
  prefix: string;
  project: string;
  region: string;
  vpc: ComputeNetwork;
  subnet: ComputeSubnetwork;
  podsRange: string;
  servicesRange: string;
  masterCidr: string;
  adminCidrs: string[];
  /** Email of the nodes' service account. */
  nodeServiceAccount: string;
  gke: Environment['gke'];
}

/** The taint that keeps everything but GPU work off GPU nodes; runner pods tolerate it. */
export const GPU_TAINT = { key: 'nvidia.com/gpu', value: 'present', effect: 'NO_SCHEDULE' } as const;

export class Cluster extends Construct {
  readonly cluster: ContainerCluster;
  readonly systemPool: ContainerNodePool;
  readonly gpuPool: ContainerNodePool;

  constructor(scope: Construct, id: string, props: ClusterProps) {
    super(scope, id);
    const { prefix, project, region, gke } = props;

    this.cluster = new ContainerCluster(this, 'cluster', {
      name: `${prefix}-gke`,
      location: region,
      network: props.vpc.id,
      subnetwork: props.subnet.id,
      // Node pools are managed below, each on its own; the default one only exists while the
      // cluster is created.
      removeDefaultNodePool: true,
      initialNodeCount: 1,
      deletionProtection: true,
      releaseChannel: { channel: 'REGULAR' },
      networkingMode: 'VPC_NATIVE',
      ipAllocationPolicy: {
        clusterSecondaryRangeName: props.podsRange,
        servicesSecondaryRangeName: props.servicesRange,
      },
      // Dataplane V2 enforces the NetworkPolicies k8s/ declares.
      datapathProvider: 'ADVANCED_DATAPATH',
      privateClusterConfig: {
        enablePrivateNodes: true,
        // The admin ranges are outside the VPC, so the public endpoint stays, open to them alone;
        // Jenkins, inside the VPC, uses the private endpoint.
        enablePrivateEndpoint: false,
        masterIpv4CidrBlock: props.masterCidr,
      },
      masterAuthorizedNetworksConfig: {
        cidrBlocks: props.adminCidrs.map((cidrBlock) => ({ cidrBlock, displayName: 'admin' })),
        gcpPublicCidrsAccessEnabled: false,
      },
      // The DNS-based endpoint is authorized by IAM (container.clusters.connect), not by network
      // reach: it is how the Jenkins agent, inside dev's VPC, deploys to prod's cluster.
      controlPlaneEndpointsConfig: { dnsEndpointConfig: { allowExternalTraffic: true } },
      workloadIdentityConfig: { workloadPool: `${project}.svc.id.goog` },
      // Managed Prometheus' managed collection (the PodMonitorings and GlobalRules of k8s/), with
      // GKE's own kube-state-metrics for pods, Deployments, StatefulSets and HPAs (the restart and
      // GPU-pool alerts read them) and the GPUs' DCGM metrics (the dashboard's utilization).
      monitoringConfig: {
        enableComponents: ['SYSTEM_COMPONENTS', 'POD', 'DEPLOYMENT', 'STATEFULSET', 'HPA', 'DCGM'],
        managedPrometheus: { enabled: true },
      },
    });

    const nodeConfig = (machineType: string, diskSizeGb: number): ContainerNodePoolNodeConfig => ({
      machineType,
      diskSizeGb,
      diskType: 'pd-balanced',
      serviceAccount: props.nodeServiceAccount,
      // Access is decided by the account's IAM roles, not by scopes.
      oauthScopes: ['https://www.googleapis.com/auth/cloud-platform'],
      // Pods see their own Workload Identity, never the node's account.
      workloadMetadataConfig: { mode: 'GKE_METADATA' },
      shieldedInstanceConfig: { enableSecureBoot: true, enableIntegrityMonitoring: true },
    });
    const management = { autoRepair: true, autoUpgrade: true };

    this.systemPool = new ContainerNodePool(this, 'system', {
      name: 'system',
      cluster: this.cluster.id,
      location: region,
      initialNodeCount: 1,
      autoscaling: {
        totalMinNodeCount: gke.systemMinNodes,
        totalMaxNodeCount: gke.systemMaxNodes,
        locationPolicy: 'BALANCED',
      },
      management,
      nodeConfig: nodeConfig(gke.systemMachineType, 50),
    });

    this.gpuPool = new ContainerNodePool(this, 'gpu', {
      name: 'gpu',
      cluster: this.cluster.id,
      location: region,
      // No GPU is paid for while the queue is empty.
      initialNodeCount: 0,
      autoscaling: {
        totalMinNodeCount: 0,
        totalMaxNodeCount: gke.gpuMaxNodes,
        // Any zone with capacity: L4s (Spot ones above all) are often short in one zone.
        locationPolicy: 'ANY',
      },
      management,
      nodeConfig: {
        ...nodeConfig(gke.gpuMachineType, 200),
        spot: gke.gpuSpot,
        guestAccelerator: [
          {
            type: gke.gpuType,
            count: 1,
            // GKE installs and upgrades the driver that matches the node image.
            gpuDriverInstallationConfig: { gpuDriverVersion: 'LATEST' },
          },
        ],
        taint: [GPU_TAINT],
      },
    });

    // A private control plane reaches nodes on 443 and 10250 only; KEDA's metrics API server (6443)
    // and admission webhooks (9443) must be opened to it.
    new ComputeFirewall(this, 'control-plane-to-webhooks', {
      name: `${prefix}-gke-control-plane-webhooks`,
      network: props.vpc.id,
      direction: 'INGRESS',
      sourceRanges: [props.masterCidr],
      targetServiceAccounts: [props.nodeServiceAccount],
      allow: [{ protocol: 'tcp', ports: ['6443', '9443'] }],
    });
  }
}
