import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ci, deliveryAccountEmail } from '../../infra/environments.ts';
import { AGENT_PROVISIONER_PERMISSIONS, IAP_RANGE } from '../../infra/jenkins.ts';
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
    // Review agents, in the CI home only, apart from the nodes (GKE's rules trust the nodes range).
    const names = resources(stack, 'google_compute_subnetwork').map((n) => n.name).sort();
    const ciHome = env.name === ci.home;
    assert.equal(names, [...(ciHome ? [`${env.prefix}-ci-agents`] : []), `${env.prefix}-cloud-run`, `${env.prefix}-nodes`]);
    if (ciHome) assert.is(one(stack, 'google_compute_subnetwork', ['name', `${env.prefix}-ci-agents`]).ip_cidr_range, env.network.ciAgentsCidr);
  }
});

test('no two ranges of an environment overlap, and RabbitMQ\'s address lies in the nodes range', () => {
  for (const [env] of eachStack()) {
    const { nodesCidr, podsCidr, servicesCidr, masterCidr, cloudRunCidr, ciAgentsCidr, rabbitmqAddress } = env.network;
    const ranges = [nodesCidr, podsCidr, servicesCidr, masterCidr, cloudRunCidr, ...(ciAgentsCidr ? [ciAgentsCidr] : [])];
    for (const [i, a] of ranges.entries()) {
      for (const b of ranges.slice(i + 1)) assert.not.ok(cidrsOverlap(a, b), `${env.name}: ${a} overlaps ${b}`);
    }
    assert.ok(inCidr(rabbitmqAddress, nodesCidr));
  }
});

test('Cloud NAT serves the private nodes\' subnet and the review agents\'', () => {
  for (const [env, stack] of eachStack()) {
    const nat = one(stack, 'google_compute_router_nat');
    assert.is(nat.source_subnetwork_ip_ranges_to_nat, 'LIST_OF_SUBNETWORKS');
    assert.equal(
      nat.subnetwork.map((s: { name: string }) => resolve(stack, s.name)),
      [`${env.prefix}-nodes`, ...(env.name === ci.home ? [`${env.prefix}-ci-agents`] : [])],
    );
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
      // An ingress rule without source ranges, tags or accounts would apply to every source.
      assert.ok((rule.source_ranges?.length > 0) !== (rule.source_service_accounts?.length > 0), `${rule.name} names its sources, one way`);
      assert.is(rule.source_tags, undefined);
      for (const range of rule.source_ranges ?? []) {
        assert.not.ok(['0.0.0.0/0', '::/0'].includes(range), `${rule.name} is open to ${range}`);
        assert.ok(allowedSources.includes(range), `${rule.name}: unexpected source ${range}`);
      }
      assert.ok(rule.target_service_accounts?.length > 0, `${rule.name} names its targets`);
      assert.is(rule.deny, undefined);
    }
  }
  // dev: control plane → nodes, IAP → Jenkins, Jenkins → review agents; prod: control plane → nodes.
  assert.is(count, 4);
});

test('Jenkins, in the CI home only: no external address, shielded, OS Login, the bootstrap\'s account; SSH and the UI only through IAP', () => {
  for (const [env, stack] of eachStack()) {
    if (env.name !== ci.home) {
      assert.equal(resources(stack, 'google_compute_instance'), [], `${env.name} runs no Jenkins VM`);
      assert.equal(resources(stack, 'google_compute_instance_template'), []);
      continue;
    }
    const vm = one(stack, 'google_compute_instance');
    assert.is(vm.name, `${env.prefix}-jenkins`);
    assert.equal(vm.network_interface.length, 1);
    assert.is(vm.network_interface[0].access_config, undefined);
    assert.is(resolve(stack, vm.network_interface[0].subnetwork), `${env.prefix}-nodes`);
    assert.equal(vm.shielded_instance_config, { enable_secure_boot: true, enable_vtpm: true, enable_integrity_monitoring: true });
    assert.is(vm.metadata['enable-oslogin'], 'TRUE');
    assert.is(vm.service_account.email, deliveryAccountEmail(env, 'jenkins'));
    assert.is(deliveryAccountEmail(env, 'jenkins'), 'itemgen-jenkins@itemgen-dev.iam.gserviceaccount.com');

    const rule = one(stack, 'google_compute_firewall', ['name', `${env.prefix}-jenkins-from-iap`]);
    assert.equal(rule.source_ranges, ['35.235.240.0/20']);
    assert.equal(rule.allow, [{ protocol: 'tcp', ports: ['22', '8080'] }]);
    assert.equal(rule.target_service_accounts, [deliveryAccountEmail(env, 'jenkins')]);
  }
});

test('review agents\' template: no external address, shielded, Spot, the review account, its own subnet; SSH from the controller only', () => {
  for (const [env, stack] of eachStack()) {
    if (env.name !== ci.home) continue;
    const template = one(stack, 'google_compute_instance_template');
    assert.is(template.name, `${env.prefix}-review-agent`);
    assert.equal(template.labels, { 'jenkins-label': ci.reviewLabel });
    assert.equal(template.network_interface.length, 1);
    assert.is(template.network_interface[0].access_config, undefined);
    assert.is(resolve(stack, template.network_interface[0].subnetwork), `${env.prefix}-ci-agents`);
    assert.equal(template.shielded_instance_config, { enable_secure_boot: true, enable_vtpm: true, enable_integrity_monitoring: true });
    assert.equal(template.service_account, { email: 'itemgen-review@itemgen-dev.iam.gserviceaccount.com', scopes: ['cloud-platform'] });
    assert.is(template.scheduling.provisioning_model, 'SPOT');
    assert.is(template.scheduling.instance_termination_action, 'DELETE');
    // The plugin's one-time key is instance metadata, which OS Login would ignore (jenkins.ts);
    // project-wide keys are refused and the host key is published for the plugin to verify.
    assert.equal(template.metadata, { 'enable-oslogin': 'FALSE', 'block-project-ssh-keys': 'TRUE', 'enable-guest-attributes': 'TRUE' });

    const rule = one(stack, 'google_compute_firewall', ['name', `${env.prefix}-review-agents-from-jenkins`]);
    assert.equal(rule.source_service_accounts, [deliveryAccountEmail(env, 'jenkins')]);
    assert.equal(rule.target_service_accounts, [deliveryAccountEmail(env, 'review')]);
    assert.equal(rule.allow, [{ protocol: 'tcp', ports: ['22'] }]);
    // No other rule reaches the agents (not IAP: nobody logs in to one).
    const toAgents = resources(stack, 'google_compute_firewall').filter((r) => r.target_service_accounts.includes(deliveryAccountEmail(env, 'review')));
    assert.is(toAgents.length, 1);
  }
});

test('the controller creates agents with a custom role cut from compute.instanceAdmin.v1, and attaches the review account only', () => {
  for (const [env, stack] of eachStack()) {
    if (env.name !== ci.home) continue;
    const role = one(stack, 'google_project_iam_custom_role', ['role_id', 'itemgenAgentProvisioner']);
    assert.equal(role.permissions, [...AGENT_PROVISIONER_PERMISSIONS]);
    // Nothing that reaches beyond instances made from the template: no IAM, no firewall, no network change.
    for (const permission of role.permissions as string[]) {
      assert.match(permission, /^compute\.(disks\.create|instanceTemplates\.(get|list|useReadOnly)|instances\.[a-zA-Z]+|machineTypes\.(get|list)|regions\.list|subnetworks\.use|zoneOperations\.get|zones\.(get|list))$/);
      assert.not.match(permission, /setIamPolicy|firewalls|networks\.(update|create)|instances\.(setIamPolicy|osAdminLogin)/);
    }
    const users = resources(stack, 'google_service_account_iam_member').filter((m) => m.role === 'roles/iam.serviceAccountUser' && m.member === `serviceAccount:${deliveryAccountEmail(env, 'jenkins')}`);
    assert.equal(users.map((m) => m.service_account_id), [`projects/${env.project}/serviceAccounts/${deliveryAccountEmail(env, 'review')}`]);
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
