// The gateway on Cloud Run (v2): its image from Artifact Registry by digest, its configuration
// (src/gateway/config.ts) as environment variables with the credentials from Secret Manager, direct
// VPC egress to reach Cloud SQL's private address and RabbitMQ's internal load balancer, and CPU
// kept allocated on at least one instance because the outbox dispatcher sweeps in the background.
// Beside it, Google's Managed Prometheus sidecar scrapes the gateway's /metrics on loopback
// (METRICS_PORT) into the same Prometheus the cluster's PodMonitorings write to (k8s/monitoring.ts),
// where the alerts (k8s/alerts.ts) and the dashboard (dashboard.ts) read it.
import { CloudRunV2ServiceIamMember } from '@cdktf/provider-google/lib/cloud-run-v2-service-iam-member/index.js';
import {
  CloudRunV2Service,
  type CloudRunV2ServiceTemplateContainersEnv,
} from '@cdktf/provider-google/lib/cloud-run-v2-service/index.js';
import type { ComputeNetwork } from '@cdktf/provider-google/lib/compute-network/index.js';
import type { ComputeSubnetwork } from '@cdktf/provider-google/lib/compute-subnetwork/index.js';
import { DataGoogleProject } from '@cdktf/provider-google/lib/data-google-project/index.js';
import type { ITerraformDependable } from 'cdktf';
import { Construct } from 'constructs';
import { pinned } from '../k8s/images.ts';
import type { Environment } from './environments.ts';

export interface GatewayServiceProps {
  prefix: string;
  project: string;
  region: string;
  settings: Environment['gateway'];
  amqpPrefix: string;
  /** The image the service is created with, `repository@sha256:…` (the `gateway_image` variable). */
  image: string;
  /** Email of the gateway's service account. */
  serviceAccount: string;
  vpc: ComputeNetwork;
  /** The subnet direct VPC egress takes instance addresses from. */
  subnet: ComputeSubnetwork;
  bucket: string;
  /** RETENTION_DAYS: the environment's retentionDays, the images bucket's lifecycle age too. */
  retentionDays: number;
  /** OTEL_* and GOOGLE_CLOUD_PROJECT (infra/environments.ts tracingSettings). */
  tracing: Record<string, string>;
  databaseMaxConnections: number;
  database: {
    /** DATABASE_URL without a password: `postgresql://user@<private ip>:5432/db?sslmode=require`. */
    url: string;
    /** PEM of the instance's CA (public), which the server's certificate must chain to. */
    caCert: string;
    /** The name the server's certificate carries (per-instance CA: `<project>:<instance>`). */
    tlsServerName: string;
  };
  /** Secrets (bootstrap-made, latest version), by the variable they become. */
  secrets: Record<'DATABASE_PASSWORD' | 'AMQP_URL' | 'AMQP_CA_CERT' | 'ADMIN_TOKEN' | 'RUNNER_TOKEN', string>;
  /** IAM member that deploys new revisions (the deployer account CI impersonates). */
  deployer: string;
  /** What the first revision needs in place: its account's access to its secrets. */
  dependsOn: ITerraformDependable[];
}

/** The public port (Cloud Run's PORT); not 8080, which is the collector's (METRICS_PORT). */
const PORT = 8081;
/**
 * METRICS_PORT: /metrics without the token, on loopback, for the sidecar alone. 8080 because that is
 * what the collector scrapes (`/metrics` there) without a configuration of its own, which would have
 * to be a mounted file, that is a secret or a bucket; the gateway serves the public API on `PORT`.
 */
export const METRICS_PORT = 8080;
/**
 * Managed Prometheus' collector for Cloud Run, by digest (images.lock.json), from Google's own
 * registry like the cloud CLI (k8s/runner.ts).
 */
export const COLLECTOR_IMAGE = pinned('us-docker.pkg.dev/cloud-ops-agents-artifacts/cloud-run-gmp-sidecar/cloud-run-gmp-sidecar:1.2.0');
const GATEWAY_CONTAINER = 'gateway';

/** The gateway's own default pool size (DATABASE_POOL_SIZE); more buys nothing. */
const MAX_POOL = 20;
/** Connections kept free of the gateway: Cloud SQL's reserved superuser slots, an operator's psql. */
const RESERVED_CONNECTIONS = 10;

/**
 * Pool size per instance such that every instance at full scale fits under max_connections: each
 * holds its pool plus one connection for LISTEN (the change feed).
 */
export function gatewayPoolSize(maxConnections: number, maxInstances: number): number {
  const size = Math.min(MAX_POOL, Math.floor((maxConnections - RESERVED_CONNECTIONS) / maxInstances) - 1);
  if (size < 2) {
    throw new Error(`max_connections ${maxConnections} is too low for ${maxInstances} gateway instances`);
  }
  return size;
}

export class GatewayService extends Construct {
  readonly service: CloudRunV2Service;

  constructor(scope: Construct, id: string, props: GatewayServiceProps) {
    super(scope, id);
    const { settings } = props;
    // With no instance running, no dispatcher sweeps: a job whose publish was never confirmed
    // would wait until the next request starts one.
    if (settings.minInstances < 1) throw new Error('the gateway needs at least one instance (outbox dispatcher)');

    const name = `${props.prefix}-gateway`;
    // Links in API answers must be absolute https URLs, and behind Cloud Run the request's own
    // origin says http. The service's URL is fixed by its name, project number and region.
    const project = new DataGoogleProject(this, 'project', { projectId: props.project });
    const publicUrl = `https://${name}-${project.number}.${props.region}.run.app`;

    const plain: Record<string, string> = {
      // Cloud Run sets PORT; the gateway listens on loopback unless told otherwise.
      HOST: '0.0.0.0',
      METRICS_PORT: String(METRICS_PORT),
      PUBLIC_URL: publicUrl,
      // Google's front end appends the client's address to X-Forwarded-For: the address the
      // per-address rate limit counts.
      TRUSTED_PROXY_HOPS: '1',
      AMQP_PREFIX: props.amqpPrefix,
      GCS_BUCKET: props.bucket,
      // The bucket enforces public access prevention; clients get signed links.
      GCS_PUBLIC: 'false',
      RETENTION_DAYS: String(props.retentionDays),
      ...props.tracing,
      DATABASE_POOL_SIZE: String(gatewayPoolSize(props.databaseMaxConnections, settings.maxInstances)),
      // No credential in the URL: the password is DATABASE_PASSWORD. The server's certificate is
      // verified against the instance's CA under the name Cloud SQL gives it (not the IP).
      DATABASE_URL: props.database.url,
      DATABASE_CA_CERT: props.database.caCert,
      DATABASE_TLS_SERVER_NAME: props.database.tlsServerName,
    };
    // `latest`: a rotated secret reaches the next revision (deploy-gateway.sh makes one per deploy).
    const env: CloudRunV2ServiceTemplateContainersEnv[] = [
      ...Object.entries(plain).map(([envName, value]) => ({ name: envName, value })),
      ...Object.entries(props.secrets).map(([envName, secret]) => ({
        name: envName,
        valueSource: { secretKeyRef: { secret, version: 'latest' } },
      })),
    ];
    const healthz = { path: '/healthz', port: PORT };


    this.service = new CloudRunV2Service(this, 'service', {
      name,
      location: props.region,
      // Public: clients authenticate with API keys and runners with the runner token, neither of
      // which Cloud Run's IAM check (Google-signed identity tokens) could verify.
      ingress: 'INGRESS_TRAFFIC_ALL',
      dependsOn: props.dependsOn,
      template: {
        serviceAccount: props.serviceAccount,
        executionEnvironment: 'EXECUTION_ENVIRONMENT_GEN2',
        maxInstanceRequestConcurrency: settings.concurrency,
        scaling: { minInstanceCount: settings.minInstances, maxInstanceCount: settings.maxInstances },
        vpcAccess: {
          networkInterfaces: [{ network: props.vpc.id, subnetwork: props.subnet.id }],
          // Only private addresses (Cloud SQL, RabbitMQ) go through the VPC; Google APIs and
          // clients stay on Cloud Run's own path.
          egress: 'PRIVATE_RANGES_ONLY',
        },
        containers: [
          {
            // First: the ingress container, whose image CI's deploys set (`--container gateway`).
            name: GATEWAY_CONTAINER,
            // The digest the first apply names (gateway_image); CI rolls out each build after
            // that (lifecycle below).
            image: props.image,
            ports: { containerPort: PORT },
            env,
            resources: {
              limits: { cpu: settings.cpu, memory: settings.memory },
              // The dispatcher and the dead-letter consumer work between requests.
              cpuIdle: false,
              startupCpuBoost: true,
            },
            // Migrations run before the server listens, so the first success means ready.
            startupProbe: { httpGet: healthz, periodSeconds: 5, timeoutSeconds: 3, failureThreshold: 24 },
            livenessProbe: { httpGet: healthz, periodSeconds: 30, timeoutSeconds: 5, failureThreshold: 3 },
          },
          {
            name: 'collector',
            image: COLLECTOR_IMAGE,
            // Started once the gateway is (its startup probe), so the first scrape finds it.
            dependsOn: [GATEWAY_CONTAINER],
            // Google's documented size for the collector.
            resources: { limits: { cpu: '1', memory: '512Mi' }, cpuIdle: false },
          },
        ],
      },
      // All traffic to the latest ready revision, so a revision Terraform makes (a template
      // change) serves too. promote-gateway.sh returns traffic to latest after each smoke test.
      traffic: [{ type: 'TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST', percent: 100 }],
      lifecycle: {
        // The image of each build is CI's (deploy-gateway.sh). Traffic too, after creation: a
        // deploy pins traffic to the serving revision and tags the new one (--no-traffic --tag)
        // until its smoke test passes, and after a failed one traffic stays pinned to the last good
        // revision. An apply that reset traffic to latest would put the failed revision live, and
        // one during a deploy would drop the tag the smoke test calls. gcloud sets client fields.
        ignoreChanges: ['template[0].containers[0].image', 'traffic', 'client', 'client_version'],
      },
    });

    const grant = (grantId: string, role: string, member: string) =>
      new CloudRunV2ServiceIamMember(this, grantId, {
        name: this.service.name,
        location: this.service.location,
        role,
        member,
      });
    grant('public', 'roles/run.invoker', 'allUsers');
    grant('deployer', 'roles/run.developer', props.deployer);
  }
}
