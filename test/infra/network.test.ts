import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { IAP_RANGE } from '../../infra/jenkins.ts';
import { cidrsOverlap, eachStack, inCidr, one, resolve, resources } from '../helpers/terraform.ts';

test('the GKE subnet carries the pods and services ranges the cluster uses; Cloud Run egress has its own subnet', () => {
  for (const [env, stack] of eachStack()) {
    const nodes = one(stack, 'google_compute_subnetwork', ['name', `${env.prefix}-nodes`]);
    assert.is(nodes.ip_cidr_range, env.network.nodesCidr);
    assert.equal(nodes.secondary_ip_range, [
      { range_name: 'pods', ip_cidr_range: env.network.podsCidr },
      { range_name: 'services', ip_cidr_range: env.network.servicesCidr },
    ]);
    const cluster = one(stack, 'google_container_cluster');
    assert.equal(cluster.ip_allocation_policy, { cluster_secondary_range_name: 'pods', services_secondary_range_name: 'services' });
    assert.is(resolve(stack, cluster.subnetwork), `${env.prefix}-nodes`);

    const cloudRun = one(stack, 'google_compute_subnetwork', ['name', `${env.prefix}-cloud-run`]);
    assert.is(cloudRun.ip_cidr_range, env.network.cloudRunCidr);
    assert.is(resources(stack, 'google_compute_subnetwork').length, 2);
  }
});

test('no two ranges of an environment overlap, and RabbitMQ\'s address lies in the nodes range', () => {
  for (const [env] of eachStack()) {
    const { nodesCidr, podsCidr, servicesCidr, masterCidr, cloudRunCidr, rabbitmqAddress } = env.network;
    const ranges = [nodesCidr, podsCidr, servicesCidr, masterCidr, cloudRunCidr];
    for (const [i, a] of ranges.entries()) {
      for (const b of ranges.slice(i + 1)) assert.not.ok(cidrsOverlap(a, b), `${env.name}: ${a} overlaps ${b}`);
    }
    assert.ok(inCidr(rabbitmqAddress, nodesCidr));
  }
});

test('Cloud NAT serves the private nodes\' subnet', () => {
  for (const [env, stack] of eachStack()) {
    const nat = one(stack, 'google_compute_router_nat');
    assert.is(nat.source_subnetwork_ip_ranges_to_nat, 'LIST_OF_SUBNETWORKS');
    assert.equal(nat.subnetwork.map((s: { name: string }) => resolve(stack, s.name)), [`${env.prefix}-nodes`]);
    assert.is(resolve(stack, nat.router), `${env.prefix}-router`);
  }
});

test('private services access: a VPC_PEERING range and the service networking connection Cloud SQL waits for', () => {
  for (const [env, stack] of eachStack()) {
    const range = one(stack, 'google_compute_global_address');
    assert.is(range.purpose, 'VPC_PEERING');
    assert.is(range.address_type, 'INTERNAL');
    const connection = one(stack, 'google_service_networking_connection');
    assert.is(connection.service, 'servicenetworking.googleapis.com');
    assert.equal(connection.reserved_peering_ranges.map((r: string) => resolve(stack, r)), [`${env.prefix}-private-services`]);
    const instance = one(stack, 'google_sql_database_instance');
    assert.ok(instance.depends_on.some((d: string) => d.startsWith('google_service_networking_connection.')));
  }
});

test('RabbitMQ\'s load balancer address is static, internal and in the nodes subnet', () => {
  for (const [env, stack] of eachStack()) {
    const address = one(stack, 'google_compute_address');
    assert.is(address.address, env.network.rabbitmqAddress);
    assert.is(address.address_type, 'INTERNAL');
    assert.is(resolve(stack, address.subnetwork), `${env.prefix}-nodes`);
    assert.is(address.region, env.region);
  }
});

test('cluster: private nodes, control plane open to the admin ranges only, Workload Identity, no default pool', () => {
  for (const [env, stack] of eachStack()) {
    const cluster = one(stack, 'google_container_cluster');
    assert.is(cluster.private_cluster_config.enable_private_nodes, true);
    assert.is(cluster.private_cluster_config.master_ipv4_cidr_block, env.network.masterCidr);
    assert.equal(
      cluster.master_authorized_networks_config.cidr_blocks.map((b: { cidr_block: string }) => b.cidr_block),
      env.network.adminCidrs,
    );
    assert.is(cluster.master_authorized_networks_config.gcp_public_cidrs_access_enabled, false);
    assert.equal(cluster.workload_identity_config, { workload_pool: `${env.project}.svc.id.goog` });
    assert.is(cluster.remove_default_node_pool, true);
    assert.is(cluster.datapath_provider, 'ADVANCED_DATAPATH');
    assert.is(cluster.location, env.region);
    // Jenkins reaches prod's control plane through the IAM-authorized DNS endpoint (Jenkinsfile).
    assert.is(cluster.control_plane_endpoints_config.dns_endpoint_config.allow_external_traffic, true);
  }
});

test('every node pool: GKE metadata server, the nodes account, shielded nodes', () => {
  for (const [, stack] of eachStack()) {
    const pools = resources(stack, 'google_container_node_pool');
    assert.equal(pools.map((p) => p.name).sort(), ['gpu', 'system']);
    for (const pool of pools) {
      assert.equal(pool.node_config.workload_metadata_config, { mode: 'GKE_METADATA' });
      assert.is(resolve(stack, pool.node_config.service_account), 'itemgen-nodes');
      assert.is(pool.node_config.shielded_instance_config.enable_secure_boot, true);
      assert.is(pool.management.auto_repair, true);
    }
  }
});

test('system pool autoscales within the environment\'s bounds', () => {
  for (const [env, stack] of eachStack()) {
    const pool = one(stack, 'google_container_node_pool', ['name', 'system']);
    assert.is(pool.node_config.machine_type, env.gke.systemMachineType);
    assert.is(pool.autoscaling.total_min_node_count, env.gke.systemMinNodes);
    assert.is(pool.autoscaling.total_max_node_count, env.gke.systemMaxNodes);
    assert.is(pool.node_config.taint, undefined);
  }
});

test('GPU pool: one L4 per g2-standard-8 node, GKE-managed driver, tainted, scales from zero, Spot as configured', () => {
  for (const [env, stack] of eachStack()) {
    const pool = one(stack, 'google_container_node_pool', ['name', 'gpu']);
    assert.is(pool.node_config.machine_type, 'g2-standard-8');
    assert.equal(pool.node_config.guest_accelerator, [
      { type: 'nvidia-l4', count: 1, gpu_driver_installation_config: { gpu_driver_version: 'LATEST' } },
    ]);
    assert.equal(pool.node_config.taint, [{ key: 'nvidia.com/gpu', value: 'present', effect: 'NO_SCHEDULE' }]);
    assert.is(pool.autoscaling.total_min_node_count, 0);
    assert.is(pool.autoscaling.total_max_node_count, env.gke.gpuMaxNodes);
    assert.is(pool.initial_node_count, 0);
    assert.is(pool.node_config.spot, env.gke.gpuSpot);
  }
  const spot = eachStack().map(([env, stack]) => [env.name, one(stack, 'google_container_node_pool', ['name', 'gpu']).node_config.spot]);
  assert.equal(spot, [['dev', true], ['prod', false]]);
});

test('no firewall rule anywhere is open to the internet; each names its sources and its targets', () => {
  let count = 0;
  for (const [env, stack] of eachStack()) {
    const allowedSources = [IAP_RANGE, env.network.masterCidr, ...env.network.adminCidrs];
    for (const rule of resources(stack, 'google_compute_firewall')) {
      count++;
      assert.is(rule.direction, 'INGRESS', rule.name);
      // An ingress rule without source ranges or tags would apply to every source.
      assert.ok(rule.source_ranges?.length > 0, `${rule.name} names its sources`);
      assert.is(rule.source_tags, undefined);
      for (const range of rule.source_ranges) {
        assert.not.ok(['0.0.0.0/0', '::/0'].includes(range), `${rule.name} is open to ${range}`);
        assert.ok(allowedSources.includes(range), `${rule.name}: unexpected source ${range}`);
      }
      assert.ok(rule.target_service_accounts?.length > 0, `${rule.name} names its targets`);
      assert.is(rule.deny, undefined);
    }
  }
  assert.is(count, 4);
});

test('Jenkins: no external address, shielded, OS Login; SSH and the UI only through IAP', () => {
  for (const [env, stack] of eachStack()) {
    const vm = one(stack, 'google_compute_instance');
    assert.is(vm.name, `${env.prefix}-jenkins`);
    assert.equal(vm.network_interface.length, 1);
    assert.is(vm.network_interface[0].access_config, undefined);
    assert.is(resolve(stack, vm.network_interface[0].subnetwork), `${env.prefix}-nodes`);
    assert.equal(vm.shielded_instance_config, { enable_secure_boot: true, enable_vtpm: true, enable_integrity_monitoring: true });
    assert.is(vm.metadata['enable-oslogin'], 'TRUE');
    assert.is(resolve(stack, vm.service_account.email), 'itemgen-jenkins');

    const rule = one(stack, 'google_compute_firewall', ['name', `${env.prefix}-jenkins-from-iap`]);
    assert.equal(rule.source_ranges, ['35.235.240.0/20']);
    assert.equal(rule.allow, [{ protocol: 'tcp', ports: ['22', '8080'] }]);
    assert.equal(rule.target_service_accounts.map((a: string) => resolve(stack, a)), ['itemgen-jenkins']);
  }
});

test('the control plane reaches only the nodes, on the webhook ports', () => {
  for (const [env, stack] of eachStack()) {
    const rule = one(stack, 'google_compute_firewall', ['name', `${env.prefix}-gke-control-plane-webhooks`]);
    assert.equal(rule.source_ranges, [env.network.masterCidr]);
    assert.equal(rule.target_service_accounts.map((a: string) => resolve(stack, a)), ['itemgen-nodes']);
    assert.equal(rule.allow, [{ protocol: 'tcp', ports: ['6443', '9443'] }]);
  }
});

test.run();
