import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { App } from 'cdktf';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bucketName, environments, imageRepository, secretName } from '../../infra/environments.ts';
import { gatewayPoolSize } from '../../infra/gateway-service.ts';
import { ItemgenStack } from '../../infra/stack.ts';
import { parseConfig } from '../../src/gateway/config.ts';
import { eachStack, one, resolve, type Block } from '../helpers/terraform.ts';
import { makeCertificates } from '../helpers/tls.ts';

/** The gateway's container: the first (CI's deploys and the image lifecycle rule name containers[0]), the ingress one. */
const container = (service: Block) => {
  assert.equal(service.template.containers.map((c: Block) => c.name), ['gateway', 'collector']);
  return service.template.containers[0] as Block;
};
const envOf = (service: Block): Block[] => container(service).env;

test('runs as the gateway\'s account, the gateway image, scaled and sized from the settings', () => {
  for (const [env, stack] of eachStack()) {
    const service = one(stack, 'google_cloud_run_v2_service');
    assert.is(service.name, `${env.prefix}-gateway`);
    assert.is(resolve(stack, service.template.service_account), 'itemgen-gateway');
    assert.is(container(service).image, '${var.gateway_image}');
    assert.equal(service.template.scaling, {
      min_instance_count: env.gateway.minInstances,
      max_instance_count: env.gateway.maxInstances,
    });
    assert.is(service.template.max_instance_request_concurrency, env.gateway.concurrency);
    assert.equal(container(service).resources.limits, { cpu: env.gateway.cpu, memory: env.gateway.memory });
    // CI's deploys set the image; an apply must not roll them back.
    assert.ok(service.lifecycle.ignore_changes.includes('template[0].containers[0].image'));
  }
});

test('the outbox dispatcher always has a CPU: at least one instance, CPU allocated outside requests', () => {
  for (const [, stack] of eachStack()) {
    const service = one(stack, 'google_cloud_run_v2_service');
    assert.ok(service.template.scaling.min_instance_count >= 1);
    assert.is(container(service).resources.cpu_idle, false);
  }
  const env = environments.dev;
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'itemgen-infra-'));
  try {
    assert.throws(
      () => new ItemgenStack(new App({ outdir }), { ...env, gateway: { ...env.gateway, minInstances: 0 } }),
      /at least one instance/,
    );
  } finally {
    fs.rmSync(outdir, { recursive: true, force: true });
  }
});

test('direct VPC egress through the Cloud Run subnet, private ranges only', () => {
  for (const [env, stack] of eachStack()) {
    const vpcAccess = one(stack, 'google_cloud_run_v2_service').template.vpc_access;
    assert.is(vpcAccess.egress, 'PRIVATE_RANGES_ONLY');
    assert.is(vpcAccess.connector, undefined);
    assert.equal(vpcAccess.network_interfaces.length, 1);
    const subnet = resolve(stack, vpcAccess.network_interfaces[0].subnetwork);
    assert.is(subnet, `${env.prefix}-cloud-run`);
    assert.is(one(stack, 'google_compute_subnetwork', ['name', subnet]).ip_cidr_range, env.network.cloudRunCidr);
  }
});

test('credentials come from Secret Manager by secret_key_ref, never as values', () => {
  for (const [env, stack] of eachStack()) {
    const service = one(stack, 'google_cloud_run_v2_service');
    const secretEnv = Object.fromEntries(
      envOf(service)
        .filter((e) => e.value_source)
        .map((e) => [e.name, { ...e.value_source.secret_key_ref, secret: resolve(stack, e.value_source.secret_key_ref.secret) }]),
    );
    const latest = (id: Parameters<typeof secretName>[1]) => ({ secret: secretName(env, id), version: 'latest' });
    assert.equal(secretEnv, {
      DATABASE_PASSWORD: latest('databasePassword'),
      AMQP_URL: latest('amqpUrl'),
      AMQP_CA_CERT: latest('rabbitmqTlsCa'),
      ADMIN_TOKEN: latest('adminToken'),
      RUNNER_TOKEN: latest('runnerToken'),
    });
    for (const e of envOf(service)) assert.ok((e.value === undefined) !== (e.value_source === undefined), e.name);
    // The revision waits for its account's access to each of those secrets.
    const grants = service.depends_on.filter((d: string) => d.startsWith('google_secret_manager_secret_iam_member.'));
    assert.is(grants.length, Object.keys(secretEnv).length);
  }
});

test('the database: a URL without a password, TLS verified against the instance\'s CA under its Cloud SQL name', () => {
  for (const [env, stack] of eachStack()) {
    const plain = Object.fromEntries(envOf(one(stack, 'google_cloud_run_v2_service')).filter((e) => e.value !== undefined).map((e) => [e.name, e.value]));
    const instance = Object.keys(stack.resource.google_sql_database_instance!)[0];
    assert.is(plain.DATABASE_URL, `postgresql://itemgen@\${google_sql_database_instance.${instance}.private_ip_address}:5432/itemgen?sslmode=require`);
    assert.is(plain.DATABASE_CA_CERT, `\${google_sql_database_instance.${instance}.server_ca_cert[0].cert}`);
    assert.is(plain.DATABASE_TLS_SERVER_NAME, `${env.project}:\${google_sql_database_instance.${instance}.name}`);
    assert.is(resolve(stack, plain.DATABASE_TLS_SERVER_NAME), `${env.project}:${env.prefix}-pg`);
  }
});

test('RETENTION_DAYS of the gateway and the images bucket\'s lifecycle age are the same number, which the gateway accepts', () => {
  for (const [env, stack] of eachStack()) {
    const plain = Object.fromEntries(envOf(one(stack, 'google_cloud_run_v2_service')).filter((e) => e.value !== undefined).map((e) => [e.name, e.value]));
    const images = one(stack, 'google_storage_bucket', ['name', bucketName(env, 'images')]);
    const [rule] = images.lifecycle_rule as Block[];
    assert.is(rule!.action.type, 'Delete');
    assert.is(plain.RETENTION_DAYS, String(rule!.condition.age), env.name);
    assert.is(rule!.condition.age, env.retentionDays);
    assert.is(parseConfig({ RETENTION_DAYS: plain.RETENTION_DAYS }).retentionDays, env.retentionDays);
  }
});

test("traces: to Cloud Trace in the environment's own project, its share of submits sampled, the rest of each trace following; as the gateway reads them", () => {
  for (const [env, stack] of eachStack()) {
    const plain = Object.fromEntries(envOf(one(stack, 'google_cloud_run_v2_service')).filter((e) => e.value !== undefined).map((e) => [e.name, e.value]));
    const tracing = Object.entries(plain as Record<string, string>).filter(([k]) => k.startsWith('OTEL_') || k === 'GOOGLE_CLOUD_PROJECT');
    assert.ok(tracing.length >= 4, env.name);
    const { telemetry } = parseConfig(Object.fromEntries(tracing));
    assert.is(telemetry.exporter, 'gcp', env.name);
    assert.is(telemetry.sampler, 'parentbased_traceidratio');
    assert.is(telemetry.samplerRatio, env.traceSampleRatio);
    assert.is(telemetry.project, env.project);
  }
  assert.is(environments.prod.traceSampleRatio, 0.1, 'a tenth of production submits');
});

test('gateway_image: validated as the environment\'s gateway repository by digest', () => {
  const digest = 'sha256:' + 'a1'.repeat(32);
  for (const [env, stack] of eachStack()) {
    const variable = stack.variable?.gateway_image;
    assert.is(variable?.type, 'string');
    assert.is(variable?.default, undefined, 'no default: the first apply names the image it pushed');
    const [validation, ...others] = variable!.validation;
    assert.is(others.length, 0);
    const match = /^\$\{can\(regex\("([^"]+)", var\.gateway_image\)\)\}$/.exec(validation.condition);
    assert.ok(match, validation.condition);
    const pattern = new RegExp(match![1]!);
    assert.ok(pattern.test(`${imageRepository(env, 'gateway')}@${digest}`));
    for (const bad of [
      `${imageRepository(env, 'gateway')}:latest`,
      `${imageRepository(env, 'gateway')}:v1@${digest}`,
      `${imageRepository(env, 'runner')}@${digest}`,
      `${imageRepository(env, 'gateway')}@sha256:${'A1'.repeat(32)}`,
      `${imageRepository(env, 'gateway')}@${digest}0`,
      `${imageRepository(env, 'gateway').replace('.pkg.', '-pkg-')}@${digest}`,
      `x${imageRepository(env, 'gateway')}@${digest}`,
    ]) {
      assert.not.ok(pattern.test(bad), bad);
    }
    for (const other of Object.values(environments).filter((e) => e.name !== env.name)) {
      assert.not.ok(pattern.test(`${imageRepository(other, 'gateway')}@${digest}`), other.name);
    }
  }
});

test('traffic: all to the latest revision; later traffic and images are CI\'s', () => {
  for (const [, stack] of eachStack()) {
    const service = one(stack, 'google_cloud_run_v2_service');
    assert.equal(service.traffic, [{ type: 'TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST', percent: 100 }]);
    assert.equal(service.lifecycle.ignore_changes, ['template[0].containers[0].image', 'traffic', 'client', 'client_version']);
  }
});

test('the environment is a valid gateway configuration: public bind, https links, the bucket, a pool that fits', async () => {
  // The CA certificates are checked as PEM at start: real ones stand in for the instance's and the broker's.
  const certs = await makeCertificates({});
  try {
    for (const [env, stack] of eachStack()) {
      const service = one(stack, 'google_cloud_run_v2_service');
      const secrets: Record<string, string> = {
        DATABASE_PASSWORD: 'pw',
        AMQP_URL: `amqps://itemgen:pw@${env.network.rabbitmqAddress}:5671`,
        AMQP_CA_CERT: certs.otherCa,
        ADMIN_TOKEN: 'a'.repeat(32),
        RUNNER_TOKEN: 'x'.repeat(32),
      };
      const computed: Record<string, string> = { DATABASE_CA_CERT: certs.ca };
      const vars = Object.fromEntries(
        envOf(service).map((e) => [
          e.name,
          e.value === undefined ? secrets[e.name] : (computed[e.name] ?? resolve(stack, e.value).replace(/\$\{[^}]+\}/g, '123456789')),
        ]),
      );
      // Cloud Run sets PORT to the container port.
      vars.PORT = String(container(service).ports.container_port);
      const config = parseConfig(vars);
      assert.is(config.databasePassword, 'pw');
      assert.equal(config.databaseTls, { ca: certs.ca, serverName: `${env.project}:${env.prefix}-pg` });
      assert.is(config.amqpCaCert, certs.otherCa);
      assert.is(config.adminToken, 'a'.repeat(32));
      assert.is(config.host, '0.0.0.0');
      assert.is(config.loopback, false);
      assert.is(config.publicUrl, `https://${env.prefix}-gateway-123456789.${env.region}.run.app`);
      assert.is(config.gcsBucket, bucketName(env, 'images'));
      assert.is(config.gcsPublic, false);
      assert.is(config.amqpPrefix, env.amqpPrefix);
      assert.is(config.trustedProxyHops, 1, 'the client address is the one Cloud Run appends to X-Forwarded-For');
      assert.is(container(service).ports.container_port, config.port);
      // The sidecar's default target, :8080/metrics, is the loopback one without a token.
      assert.is(config.metricsPort, 8080);
      assert.is.not(config.port, config.metricsPort);
      // Every instance at full scale: its pool and its LISTEN connection, under max_connections.
      const connections = env.gateway.maxInstances * (config.databasePoolSize + 1);
      assert.ok(connections <= env.database.maxConnections, `${connections} > ${env.database.maxConnections}`);
    }
  } finally {
    await certs.remove();
  }
});

test('pool size: capped at the gateway default, refused when the database cannot hold the instances', () => {
  assert.is(gatewayPoolSize(100, 3), 20);
  assert.is(gatewayPoolSize(200, 20), 8);
  assert.throws(() => gatewayPoolSize(40, 20), /too low/);
});

test('startup and liveness probes on /healthz', () => {
  for (const [, stack] of eachStack()) {
    const c = container(one(stack, 'google_cloud_run_v2_service'));
    assert.equal(c.startup_probe.http_get, { path: '/healthz', port: c.ports.container_port });
    assert.equal(c.liveness_probe.http_get, { path: '/healthz', port: c.ports.container_port });
  }
});

test('Managed Prometheus sidecar: pinned, started after the gateway, scraping the loopback /metrics without a token', () => {
  const lock = JSON.parse(fs.readFileSync(new URL('../../images.lock.json', import.meta.url), 'utf8')) as Record<string, string>;
  for (const [env, stack] of eachStack()) {
    const service = one(stack, 'google_cloud_run_v2_service');
    const collector = service.template.containers[1] as Block;
    const name = 'us-docker.pkg.dev/cloud-ops-agents-artifacts/cloud-run-gmp-sidecar/cloud-run-gmp-sidecar:1.2.0';
    assert.is(collector.image, `${name}@${lock[name]}`);
    assert.equal(collector.depends_on, ['gateway']);
    assert.is(collector.ports, undefined, 'only the gateway receives requests');
    assert.is(collector.volume_mounts, undefined, 'the default RunMonitoring: :8080/metrics');
    assert.is(service.lifecycle.ignore_changes.some((f: string) => f.startsWith('template[0].containers[1]')), false, 'Terraform owns the collector');
    // The collector's default target is :8080/metrics (the configuration test above parses it); the public API is elsewhere.
    assert.is.not(container(service).ports.container_port, 8080, env.name);
  }
});

test('anyone may invoke (the API checks its own keys); only the deployer (CI, impersonated) may deploy', () => {
  for (const [, stack] of eachStack()) {
    const service = one(stack, 'google_cloud_run_v2_service');
    assert.is(service.ingress, 'INGRESS_TRAFFIC_ALL');
    const invoker = one(stack, 'google_cloud_run_v2_service_iam_member', ['role', 'roles/run.invoker']);
    assert.is(invoker.member, 'allUsers');
    const developer = one(stack, 'google_cloud_run_v2_service_iam_member', ['role', 'roles/run.developer']);
    assert.is(resolve(stack, developer.member), 'serviceAccount:itemgen-deployer');
  }
});

test.run();
