// The private network of one environment: the GKE subnet (nodes and internal load balancers, with
// secondary ranges for pods and services), the subnet Cloud Run's direct VPC egress takes its
// addresses from, Cloud NAT for machines without public addresses, private services access for
// Cloud SQL, and the static internal address of RabbitMQ's load balancer.
import { ComputeAddress } from '@cdktf/provider-google/lib/compute-address/index.js';
import { ComputeGlobalAddress } from '@cdktf/provider-google/lib/compute-global-address/index.js';
import { ComputeNetwork } from '@cdktf/provider-google/lib/compute-network/index.js';
import { ComputeRouterNat } from '@cdktf/provider-google/lib/compute-router-nat/index.js';
import { ComputeRouter } from '@cdktf/provider-google/lib/compute-router/index.js';
import { ComputeSubnetwork } from '@cdktf/provider-google/lib/compute-subnetwork/index.js';
import { ServiceNetworkingConnection } from '@cdktf/provider-google/lib/service-networking-connection/index.js';
import { Construct } from 'constructs';
import type { Environment } from './environments.ts';

export interface NetworkProps {
  prefix: string;
  region: string;
  network: Environment['network'];
}

export class Network extends Construct {
  /** Names of the GKE subnet's secondary ranges. */
  static readonly podsRange = 'pods';
  static readonly servicesRange = 'services';

  readonly vpc: ComputeNetwork;
  readonly nodesSubnet: ComputeSubnetwork;
  readonly cloudRunSubnet: ComputeSubnetwork;
  /** The review agents' subnet, where the environment has `ciAgentsCidr` (the CI home). */
  readonly ciAgentsSubnet: ComputeSubnetwork | undefined;
  /** The peering Cloud SQL's private address comes through; an instance must wait for it. */
  readonly privateServices: ServiceNetworkingConnection;
  readonly rabbitmqAddress: ComputeAddress;

  constructor(scope: Construct, id: string, props: NetworkProps) {
    super(scope, id);
    const { prefix, region, network } = props;

    this.vpc = new ComputeNetwork(this, 'vpc', {
      name: `${prefix}-vpc`,
      autoCreateSubnetworks: false,
      routingMode: 'REGIONAL',
    });

    this.nodesSubnet = new ComputeSubnetwork(this, 'nodes', {
      name: `${prefix}-nodes`,
      region,
      network: this.vpc.id,
      ipCidrRange: network.nodesCidr,
      secondaryIpRange: [
        { rangeName: Network.podsRange, ipCidrRange: network.podsCidr },
        { rangeName: Network.servicesRange, ipCidrRange: network.servicesCidr },
      ],
      // Private nodes pull images and reach Google APIs without leaving Google's network.
      privateIpGoogleAccess: true,
    });

    this.cloudRunSubnet = new ComputeSubnetwork(this, 'cloud-run', {
      name: `${prefix}-cloud-run`,
      region,
      network: this.vpc.id,
      ipCidrRange: network.cloudRunCidr,
      privateIpGoogleAccess: true,
    });

    // Pull requests' code runs here, apart from the nodes (see Environment.network.ciAgentsCidr).
    this.ciAgentsSubnet = network.ciAgentsCidr
      ? new ComputeSubnetwork(this, 'ci-agents', {
          name: `${prefix}-ci-agents`,
          region,
          network: this.vpc.id,
          ipCidrRange: network.ciAgentsCidr,
          privateIpGoogleAccess: true,
        })
      : undefined;

    // Nodes, the Jenkins VM and its agents have no public address; they reach registries and
    // package mirrors through NAT. Cloud Run sends only private ranges into the VPC, so its subnet
    // needs none.
    const router = new ComputeRouter(this, 'router', { name: `${prefix}-router`, region, network: this.vpc.id });
    new ComputeRouterNat(this, 'nat', {
      name: `${prefix}-nat`,
      region,
      router: router.name,
      natIpAllocateOption: 'AUTO_ONLY',
      sourceSubnetworkIpRangesToNat: 'LIST_OF_SUBNETWORKS',
      subnetwork: [this.nodesSubnet, ...(this.ciAgentsSubnet ? [this.ciAgentsSubnet] : [])].map((subnet) => ({
        name: subnet.id,
        sourceIpRangesToNat: ['ALL_IP_RANGES'],
      })),
      logConfig: { enable: true, filter: 'ERRORS_ONLY' },
    });

    // Cloud SQL's private address lives in a Google-managed network peered with ours; this range
    // is reserved for it so it never collides with our subnets.
    const peeringRange = new ComputeGlobalAddress(this, 'private-services-range', {
      name: `${prefix}-private-services`,
      network: this.vpc.id,
      purpose: 'VPC_PEERING',
      addressType: 'INTERNAL',
      prefixLength: 20,
    });
    this.privateServices = new ServiceNetworkingConnection(this, 'private-services', {
      network: this.vpc.id,
      service: 'servicenetworking.googleapis.com',
      reservedPeeringRanges: [peeringRange.name],
      // Removing the peering fails while Google still holds the instance it served; the range's
      // deletion releases it.
      deletionPolicy: 'ABANDON',
    });

    // RabbitMQ's Service (k8s/) asks for this address, so AMQP_URL never changes when the load
    // balancer is recreated. Shared, so its AMQP and management ports may be separate Services.
    this.rabbitmqAddress = new ComputeAddress(this, 'rabbitmq', {
      name: `${prefix}-rabbitmq`,
      region,
      addressType: 'INTERNAL',
      purpose: 'SHARED_LOADBALANCER_VIP',
      subnetwork: this.nodesSubnet.id,
      address: network.rabbitmqAddress,
    });
  }
}
