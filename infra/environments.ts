// The settings of each deployment environment, in one typed place. Both `infra/` (Terraform) and
// `k8s/` (Kubernetes manifests) read them, so a name or address that the two sides must agree on
// (service accounts, the RabbitMQ internal load balancer address, the Cloud Run egress range) is
// written once.

export type EnvironmentName = 'dev' | 'prod';

export interface Environment {
  name: EnvironmentName;
  /** Google Cloud project and region everything lives in. */
  project: string;
  region: string;
  /** Prefix of every resource name: `${prefix}-…`. */
  prefix: string;
  network: {
    /** Primary range of the GKE subnet (nodes and internal load balancers). */
    nodesCidr: string;
    podsCidr: string;
    servicesCidr: string;
    /** Control plane range of the private cluster. */
    masterCidr: string;
    /** Subnet that Cloud Run's direct VPC egress takes addresses from. */
    cloudRunCidr: string;
    /** Static internal address of RabbitMQ's internal load balancer, inside `nodesCidr`. */
    rabbitmqAddress: string;
    /** Ranges allowed to reach the Jenkins VM (through IAP) and the GKE control plane. Never 0.0.0.0/0. */
    adminCidrs: string[];
    /**
     * Subnet of the ephemeral review agents (CI home only). Not the nodes subnet: GKE's own firewall
     * rules let that range reach every node, and pull requests' code runs on these agents.
     */
    ciAgentsCidr?: string;
  };
  gke: {
    systemMachineType: string;
    systemMinNodes: number;
    systemMaxNodes: number;
    gpuMachineType: string;
    gpuType: string;
    gpuMaxNodes: number;
    gpuSpot: boolean;
  };
  database: {
    tier: string;
    highAvailability: boolean;
    diskGb: number;
    deletionProtection: boolean;
    /** PostgreSQL max_connections, set explicitly so the gateway's pool can be sized against it. */
    maxConnections: number;
  };
  /**
   * Days a finished generation and its images are kept: the gateway's RETENTION_DAYS (which deletes
   * both, src/gateway/retention.ts) and the images bucket's lifecycle rule (a backstop for images
   * whose row is gone), one number so neither outlives the other.
   */
  retentionDays: number;
  /** The share of generations traced (to Cloud Trace), from the submit down; see tracingSettings. */
  traceSampleRatio: number;
  gateway: {
    minInstances: number;
    maxInstances: number;
    concurrency: number;
    cpu: string;
    memory: string;
  };
  rabbitmq: {
    replicas: number;
    storage: string;
    cpu: string;
    memory: string;
  };
  runner: {
    maxReplicas: number;
    /** Messages waiting per runner before KEDA adds another. */
    queueLengthPerRunner: number;
    /** Seconds a stopping runner may take to finish its generation. */
    graceSeconds: number;
    /** Folder of the model (diffusers ONNX layout) in the models bucket; a new model is a new folder. */
    model: string;
    /** CPU and memory of one runner pod (requests = limits), beside its one GPU. */
    cpu: string;
    memory: string;
  };
  /** Kubernetes namespace and service accounts; Workload Identity binds them to Google service accounts. */
  kubernetes: {
    namespace: string;
    runnerServiceAccount: string;
    rabbitmqServiceAccount: string;
  };
  /** RabbitMQ names prefix (AMQP_PREFIX); the work queue is `${amqpPrefix}.generate`. */
  amqpPrefix: string;
  /**
   * The environment whose images this one deploys, copied by digest (push-images.sh --from): the
   * bytes tested there are the bytes run here. Unset: images are pushed from the build.
   */
  imagesFrom?: EnvironmentName;
}

const base = {
  region: 'europe-west4',
  kubernetes: { namespace: 'itemgen', runnerServiceAccount: 'itemgen-runner', rabbitmqServiceAccount: 'rabbitmq' },
  amqpPrefix: 'itemgen',
} as const;

export const environments: Record<EnvironmentName, Environment> = {
  dev: {
    ...base,
    name: 'dev',
    project: 'itemgen-dev',
    prefix: 'itemgen-dev',
    network: {
      nodesCidr: '10.10.0.0/20',
      podsCidr: '10.12.0.0/16',
      servicesCidr: '10.13.0.0/20',
      masterCidr: '172.16.0.0/28',
      cloudRunCidr: '10.10.16.0/24',
      rabbitmqAddress: '10.10.15.250',
      adminCidrs: ['203.0.113.0/28'],
      ciAgentsCidr: '10.10.17.0/24',
    },
    gke: {
      systemMachineType: 'e2-standard-4', systemMinNodes: 1, systemMaxNodes: 3,
      gpuMachineType: 'g2-standard-8', gpuType: 'nvidia-l4', gpuMaxNodes: 2, gpuSpot: true,
    },
    database: { tier: 'db-custom-1-3840', highAvailability: false, diskGb: 20, deletionProtection: true, maxConnections: 100 },
    retentionDays: 7,
    traceSampleRatio: 1,
    gateway: { minInstances: 1, maxInstances: 3, concurrency: 80, cpu: '1', memory: '512Mi' },
    rabbitmq: { replicas: 1, storage: '10Gi', cpu: '500m', memory: '1Gi' },
    runner: { maxReplicas: 2, queueLengthPerRunner: 4, graceSeconds: 180, model: 'tsuki-adventure-v1', cpu: '4', memory: '16Gi' },
  },
  prod: {
    ...base,
    name: 'prod',
    project: 'itemgen-prod',
    imagesFrom: 'dev',
    prefix: 'itemgen-prod',
    network: {
      nodesCidr: '10.20.0.0/20',
      podsCidr: '10.22.0.0/16',
      servicesCidr: '10.23.0.0/20',
      masterCidr: '172.16.1.0/28',
      cloudRunCidr: '10.20.16.0/24',
      rabbitmqAddress: '10.20.15.250',
      adminCidrs: ['203.0.113.0/28'],
    },
    gke: {
      systemMachineType: 'e2-standard-4', systemMinNodes: 1, systemMaxNodes: 5,
      gpuMachineType: 'g2-standard-8', gpuType: 'nvidia-l4', gpuMaxNodes: 8, gpuSpot: false,
    },
    database: { tier: 'db-custom-2-7680', highAvailability: true, diskGb: 50, deletionProtection: true, maxConnections: 200 },
    retentionDays: 30,
    traceSampleRatio: 0.1,
    gateway: { minInstances: 1, maxInstances: 20, concurrency: 80, cpu: '1', memory: '1Gi' },
    rabbitmq: { replicas: 3, storage: '50Gi', cpu: '1', memory: '2Gi' },
    runner: { maxReplicas: 8, queueLengthPerRunner: 4, graceSeconds: 180, model: 'tsuki-adventure-v1', cpu: '4', memory: '16Gi' },
  },
};

/** Google service account ids (the part before `@`), shared by IAM (infra) and Workload Identity annotations (k8s). */
export const serviceAccountIds = {
  gateway: 'itemgen-gateway',
  runner: 'itemgen-runner',
  rabbitmq: 'itemgen-rabbitmq',
  jenkins: 'itemgen-jenkins',
  /** Pushes images, deploys gateway revisions, applies the manifests; CI impersonates it (no key). */
  deployer: 'itemgen-deployer',
} as const;

export function serviceAccountEmail(env: Environment, id: keyof typeof serviceAccountIds): string {
  return `${serviceAccountIds[id]}@${env.project}.iam.gserviceaccount.com`;
}

/**
 * Secret Manager secrets, named `${prefix}-${id}` (secretName). Every value is generated once at
 * bootstrap, outside Terraform and the repository (no payload reaches Terraform's state or plans),
 * and only read by the workloads granted access.
 */
export const secretIds = {
  databasePassword: 'database-password',
  amqpUrl: 'amqp-url',
  runnerToken: 'runner-token',
  rabbitmqPassword: 'rabbitmq-password',
  rabbitmqErlangCookie: 'rabbitmq-erlang-cookie',
  /** The gateway's ADMIN_TOKEN: the admin API (/admin/v1/keys) that creates the first API key. */
  adminToken: 'admin-token',
  /** RabbitMQ's TLS listener (the internal load balancer, for Cloud Run): CA certificate, server certificate and key, PEM. */
  rabbitmqTlsCa: 'rabbitmq-tls-ca',
  rabbitmqTlsCert: 'rabbitmq-tls-cert',
  rabbitmqTlsKey: 'rabbitmq-tls-key',
} as const;

export function secretName(env: Environment, id: keyof typeof secretIds): string {
  return `${env.prefix}-${secretIds[id]}`;
}

/**
 * Bucket names (global, hence the project in them): `images` holds generated images, `models` the
 * model folders the runners load at start. Infra creates them; k8s points the runners at them.
 */
export function bucketName(env: Environment, bucket: 'images' | 'models'): string {
  return `${env.project}-${bucket}`;
}

/** Artifact Registry image path (without tag) for `gateway` or `runner`. */
export function imageRepository(env: Environment, image: 'gateway' | 'runner'): string {
  return `${env.region}-docker.pkg.dev/${env.project}/${env.prefix}-images/${image}`;
}

/**
 * Artifact Registry path of the Docker Hub mirror (a remote repository): Docker Hub's `rabbitmq`
 * is `${mirrorRepository(env)}/library/rabbitmq`.
 */
export function mirrorRepository(env: Environment): string {
  return `${env.region}-docker.pkg.dev/${env.project}/${env.prefix}-mirror`;
}

/**
 * Where delivery runs from: the Jenkins VM (controller, and the executor that deploys main) and the
 * ephemeral agents that run pull requests live in one environment's project, and reach every
 * environment by impersonating that environment's accounts; no service-account key exists anywhere.
 * Prod runs no Jenkins VM of its own.
 */
export const ci = {
  /** The environment whose project holds the Jenkins VM and the review agents' instance template. */
  home: 'dev' as EnvironmentName,
  /** Jenkins agent labels: review agents (ephemeral, plan-only identity) and the deploy executor. */
  reviewLabel: 'itemgen-review',
  deployLabel: 'itemgen-deploy',
} as const;

/**
 * The OpenTelemetry settings of the gateway and the runners (src/telemetry/): spans to Google Cloud
 * Trace in the environment's project, a share of generations sampled at the submit and the rest of
 * each trace following that decision (parentbased), log lines naming their trace in that project.
 */
export function tracingSettings(env: Environment): Record<string, string> {
  return {
    OTEL_TRACES_EXPORTER: 'gcp',
    OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
    OTEL_TRACES_SAMPLER_ARG: String(env.traceSampleRatio),
    GOOGLE_CLOUD_PROJECT: env.project,
  };
}

/**
 * Accounts the bootstrap makes (scripts/ci/bootstrap.sh, infra/bootstrap.ts), outside Terraform,
 * because they run it or run the CI that runs it. `terraform` and `planner` exist in every
 * environment's project; `jenkins` and `review` only in the CI home's (`ci.home`).
 */
export const deliveryAccountIds = {
  /** Applies Terraform (a scoped set of roles, never owner); impersonated by `jenkins`. */
  terraform: 'itemgen-terraform',
  /** Plans pull requests: read roles only, no secret payload; impersonated by `review`. */
  planner: 'itemgen-planner',
  /** Attached to the Jenkins VM: may impersonate `terraform` and the `deployer` of each environment. */
  jenkins: serviceAccountIds.jenkins,
  /** Attached to the ephemeral review agents: may impersonate `planner` of each environment only. */
  review: 'itemgen-review',
} as const;

export type DeliveryAccount = keyof typeof deliveryAccountIds;

/** Email of a delivery account; `jenkins` and `review` are always in the CI home's project. */
export function deliveryAccountEmail(env: Environment, who: DeliveryAccount): string {
  const project = who === 'jenkins' || who === 'review' ? environments[ci.home].project : env.project;
  return `${deliveryAccountIds[who]}@${project}.iam.gserviceaccount.com`;
}
