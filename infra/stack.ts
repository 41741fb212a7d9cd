// One environment's Terraform stack: the constructs of infra/ wired together from its settings
// (environments.ts), its state in the project's tfstate bucket, and the few non-secret outputs
// an operator, k8s/ or the CI scripts need.
//
// What exists before the first plan is bootstrap.ts's (scripts/ci/bootstrap.sh): the APIs, the
// state bucket, the secrets (no payload passes through Terraform) and the delivery accounts. Two
// variables: `gateway_image`, the digest the Cloud Run service is created with (pushed before the
// first apply; later the one running, which CI owns), and `database_password`, sent write-only to
// Cloud SQL (deploy plans and applies export it from the bootstrap secret; review plans leave it
// empty); ephemeral, so neither the state nor a saved plan holds it.
import { GoogleProvider } from '@cdktf/provider-google/lib/provider/index.js';
import { GcsBackend, TerraformOutput, TerraformStack, TerraformVariable } from 'cdktf';
import type { Construct } from 'constructs';
import { Cluster } from './cluster.ts';
import { Dashboard } from './dashboard.ts';
import { DATABASE, Database, USER } from './database.ts';
import { stateBucket } from './bootstrap.ts';
import {
  ci,
  deliveryAccountEmail,
  environments,
  imageRepository,
  secretIds,
  serviceAccountEmail,
  secretName,
  tracingSettings,
  type Environment,
} from './environments.ts';
import { GatewayService } from './gateway-service.ts';
import { Identities, WorkloadIdentity, type Workload } from './identities.ts';
import { Jenkins } from './jenkins.ts';
import { Network } from './network.ts';
import { ImageRegistry } from './registry.ts';
import { SecretAccess } from './secrets.ts';
import { Buckets } from './storage.ts';

/** The oldest Terraform CLI that sends write-only arguments (password_wo). */
export const MIN_TERRAFORM_VERSION = '1.11';

export function stackName(env: Environment): string {
  return `itemgen-${env.name}`;
}

export class ItemgenStack extends TerraformStack {
  constructor(scope: Construct, env: Environment) {
    super(scope, stackName(env));
    const { project, region, prefix } = env;

    new GoogleProvider(this, 'google', {
      project,
      region,
      defaultLabels: { app: 'itemgen', environment: env.name },
    });
    new GcsBackend(this, { bucket: stateBucket(env), prefix: `terraform/${stackName(env)}` });
    // Write-only arguments (the database password, database.ts) need Terraform 1.11; an older
    // binary would refuse them less clearly than this.
    this.addOverride('terraform.required_version', `>= ${MIN_TERRAFORM_VERSION}`);

    const gatewayImage = new TerraformVariable(this, 'gateway_image', {
      type: 'string',
      description: 'Image the gateway service is created with, by digest; CI deploys later ones',
      validation: [
        {
          condition: `\${can(regex("${gatewayImagePattern(env)}", var.gateway_image))}`,
          errorMessage: `gateway_image must be ${imageRepository(env, 'gateway')}@sha256:<64 hex digits>.`,
        },
      ],
    });
    const databasePassword = new TerraformVariable(this, 'database_password', {
      type: 'string',
      sensitive: true,
      // Empty in review plans, which change nothing with it (write-only, versioned: database.ts).
      default: '',
      description: 'Cloud SQL user password (the database-password secret), sent write-only',
    });
    // Ephemeral (Terraform 1.10+): its value is kept out of the saved plan file as well as the state,
    // so terraform-apply.sh passes it again. cdktf 0.21 has no field for it.
    databasePassword.addOverride('ephemeral', true);

    const jenkinsEmail = deliveryAccountEmail(env, 'jenkins');
    const identities = new Identities(this, 'identities', { project, jenkins: jenkinsEmail });
    const email = (who: Workload | 'nodes') => identities.accounts[who].email;

    const network = new Network(this, 'network', { prefix, region, network: env.network });

    const cluster = new Cluster(this, 'gke', {
      prefix,
      project,
      region,
      vpc: network.vpc,
      subnet: network.nodesSubnet,
      podsRange: Network.podsRange,
      servicesRange: Network.servicesRange,
      masterCidr: env.network.masterCidr,
      adminCidrs: env.network.adminCidrs,
      nodeServiceAccount: email('nodes'),
      gke: env.gke,
    });
    new WorkloadIdentity(this, 'workload-identity', {
      project,
      namespace: env.kubernetes.namespace,
      cluster: cluster.cluster,
      bindings: [
        { name: 'runner', account: identities.accounts.runner, kubernetesServiceAccount: env.kubernetes.runnerServiceAccount },
        { name: 'rabbitmq', account: identities.accounts.rabbitmq, kubernetesServiceAccount: env.kubernetes.rabbitmqServiceAccount },
      ],
    });

    const database = new Database(this, 'database', {
      prefix,
      region,
      vpc: network.vpc,
      privateServices: network.privateServices,
      settings: env.database,
      password: databasePassword.stringValue,
    });

    // The gateway's secrets, by the variable each becomes (gateway-service.ts).
    const gatewaySecrets = {
      DATABASE_PASSWORD: 'databasePassword',
      AMQP_URL: 'amqpUrl',
      AMQP_CA_CERT: 'rabbitmqTlsCa',
      ADMIN_TOKEN: 'adminToken',
      RUNNER_TOKEN: 'runnerToken',
    } as const satisfies Record<string, keyof typeof secretIds>;
    const gatewayReads = { gateway: identities.member('gateway') };
    const secretAccess = new SecretAccess(this, 'secret-access', {
      grants: Object.values(gatewaySecrets).map((key) => ({ id: secretIds[key], secret: secretName(env, key), readers: gatewayReads })),
    });

    const buckets = new Buckets(this, 'buckets', {
      env,
      runner: identities.member('runner'),
      gateway: identities.member('gateway'),
    });

    const registry = new ImageRegistry(this, 'registry', {
      prefix,
      region,
      reader: identities.member('nodes'),
      writer: identities.member('deployer'),
      copiers: Object.values(environments)
        .filter((other) => other.imagesFrom === env.name)
        .map((other) => `serviceAccount:${serviceAccountEmail(other, 'deployer')}`),
    });

    const gateway = new GatewayService(this, 'gateway', {
      prefix,
      project,
      region,
      settings: env.gateway,
      amqpPrefix: env.amqpPrefix,
      image: gatewayImage.stringValue,
      serviceAccount: email('gateway'),
      vpc: network.vpc,
      subnet: network.cloudRunSubnet,
      bucket: buckets.images.name,
      retentionDays: env.retentionDays,
      tracing: tracingSettings(env),
      databaseMaxConnections: env.database.maxConnections,
      database: {
        url: `postgresql://${USER}@${database.instance.privateIpAddress}:5432/${DATABASE}?sslmode=require`,
        caCert: database.instance.serverCaCert.get(0).cert,
        tlsServerName: `${project}:${database.instance.name}`,
      },
      secrets: Object.fromEntries(Object.entries(gatewaySecrets).map(([name, key]) => [name, secretName(env, key)])) as Record<
        keyof typeof gatewaySecrets,
        string
      >,
      deployer: identities.member('deployer'),
      dependsOn: secretAccess.members,
    });

    new Dashboard(this, 'dashboard', { env });

    // Names and addresses only: nothing here is a credential.
    const outputs: Record<string, string> = {
      gateway_url: gateway.service.uri,
      gateway_service: gateway.service.name,
      cluster_name: cluster.cluster.name,
      image_bucket: buckets.images.name,
      model_bucket: buckets.models.name,
      image_repository: registry.repository.name,
      mirror_repository: registry.mirror.name,
      rabbitmq_address: network.rabbitmqAddress.address,
      database_instance: database.instance.connectionName,
      deployer_email: identities.accounts.deployer.email,
    };

    // Delivery lives in the CI home only: prod has no Jenkins VM.
    if (env.name === ci.home) {
      if (!network.ciAgentsSubnet) throw new Error(`the CI home (${env.name}) needs network.ciAgentsCidr`);
      const jenkins = new Jenkins(this, 'jenkins', {
        prefix,
        project,
        zone: `${region}-a`,
        vpc: network.vpc,
        subnet: network.nodesSubnet,
        agentsSubnet: network.ciAgentsSubnet,
        serviceAccount: jenkinsEmail,
        reviewAccount: deliveryAccountEmail(env, 'review'),
        reviewLabel: ci.reviewLabel,
      });
      outputs.jenkins_instance = jenkins.instance.name;
      outputs.review_agent_template = jenkins.reviewTemplate.name;
    }
    for (const [name, value] of Object.entries(outputs)) new TerraformOutput(this, name, { value });
  }
}

/**
 * What `gateway_image` must match: the environment's gateway repository, by digest (a regular
 * expression written without backslashes, so it reads the same in TypeScript, JSON and HCL).
 */
export function gatewayImagePattern(env: Environment): string {
  return `^${imageRepository(env, 'gateway').replace(/[.]/g, '[.]')}@sha256:[0-9a-f]{64}$`;
}
