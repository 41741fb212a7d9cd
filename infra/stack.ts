// One environment's Terraform stack: the constructs of infra/ wired together from its settings
// (environments.ts), its state in the project's tfstate bucket, and the few non-secret outputs
// an operator or k8s/ needs.
//
// Bootstrap, once per project and before the first plan (outside Terraform, which cannot store its
// own state bucket or read secrets that do not exist yet): enable the APIs (compute, container,
// sqladmin, servicenetworking, secretmanager, artifactregistry, run, iam, iamcredentials, iap),
// create the `${project}-tfstate` bucket (versioned, uniform access), and create each bootstrap
// secret with one version: database-password, runner-token, rabbitmq-password,
// rabbitmq-erlang-cookie, and amqp-url (whose password is rabbitmq-password's and whose host is
// network.rabbitmqAddress). The runners and RabbitMQ read theirs from Kubernetes Secrets made from
// the same values (k8s/secrets.ts), so only the gateway reads Secret Manager. The Cloud Run service
// starts on gateway:latest, so the first apply goes in two steps: `-target` the registry, push a
// first image with IMAGE_TAG=latest (scripts/ci/build-images.sh, push-images.sh), apply the rest.
import { GoogleProvider } from '@cdktf/provider-google/lib/provider/index.js';
import { GcsBackend, TerraformOutput, TerraformStack } from 'cdktf';
import type { Construct } from 'constructs';
import { Cluster } from './cluster.ts';
import { Database } from './database.ts';
import { imageRepository, secretIds, secretName, type Environment } from './environments.ts';
import { GatewayService } from './gateway-service.ts';
import { Identities, WorkloadIdentity, type Workload } from './identities.ts';
import { Jenkins } from './jenkins.ts';
import { Network } from './network.ts';
import { ImageRegistry } from './registry.ts';
import { SecretAccess } from './secrets.ts';
import { Buckets } from './storage.ts';

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
    new GcsBackend(this, { bucket: `${project}-tfstate`, prefix: `terraform/${stackName(env)}` });

    const identities = new Identities(this, 'identities', { project });
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
      passwordSecret: secretName(env, 'databasePassword'),
      urlSecret: secretName(env, 'databaseUrl'),
    });

    const gatewayReads = { gateway: identities.member('gateway') };
    const secretAccess = new SecretAccess(this, 'secret-access', {
      grants: [
        { id: secretIds.databaseUrl, secret: database.urlSecret.secretId, readers: gatewayReads },
        { id: secretIds.amqpUrl, secret: secretName(env, 'amqpUrl'), readers: gatewayReads },
        { id: secretIds.runnerToken, secret: secretName(env, 'runnerToken'), readers: gatewayReads },
      ],
    });

    const buckets = new Buckets(this, 'buckets', {
      env,
      runner: identities.member('runner'),
      gateway: identities.member('gateway'),
    });

    new ImageRegistry(this, 'registry', {
      prefix,
      region,
      reader: identities.member('nodes'),
      writer: identities.member('jenkins'),
    });

    const gateway = new GatewayService(this, 'gateway', {
      prefix,
      project,
      region,
      settings: env.gateway,
      amqpPrefix: env.amqpPrefix,
      image: imageRepository(env, 'gateway'),
      serviceAccount: email('gateway'),
      vpc: network.vpc,
      subnet: network.cloudRunSubnet,
      bucket: buckets.images.name,
      databaseMaxConnections: env.database.maxConnections,
      databaseUrl: { secret: database.urlSecret.secretId, version: database.urlSecretVersion.version },
      amqpUrlSecret: secretName(env, 'amqpUrl'),
      runnerTokenSecret: secretName(env, 'runnerToken'),
      deployer: identities.member('jenkins'),
      dependsOn: secretAccess.members,
    });

    const jenkins = new Jenkins(this, 'jenkins', {
      prefix,
      zone: `${region}-a`,
      vpc: network.vpc,
      subnet: network.nodesSubnet,
      serviceAccount: email('jenkins'),
    });

    // Names and addresses only: nothing here is a credential.
    const outputs: Record<string, string> = {
      gateway_url: gateway.service.uri,
      cluster_name: cluster.cluster.name,
      image_bucket: buckets.images.name,
      model_bucket: buckets.models.name,
      rabbitmq_address: network.rabbitmqAddress.address,
      database_instance: database.instance.connectionName,
      jenkins_instance: jenkins.instance.name,
    };
    for (const [name, value] of Object.entries(outputs)) new TerraformOutput(this, name, { value });
  }
}
