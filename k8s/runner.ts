// The runners: a Deployment on the GPU node pool, one GPU per pod, scaled by KEDA on the queue
// (autoscaling.ts), never by hand. Configuration comes from a ConfigMap built here and from the
// bootstrap Secret (secrets.ts) by reference; the variable names are src/runner/config.ts's.
import { createHash } from 'node:crypto';
import { ApiObject, Duration, JsonPatch, Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { bucketName, imageRepository, serviceAccountEmail, tracingSettings, type Environment } from '../infra/environments.ts';
import { cpu, memory, restrictedContainer, selectorLabels } from './common.ts';
import { pinned } from './images.ts';
import { runnerSecret } from './secrets.ts';

/** RUNNER_HEALTH_PORT: GET /healthz (200 while consuming) and GET /metrics (src/runner/health.ts). */
export const HEALTH_PORT = 8081;
/** The health port's name, which the runners' PodMonitoring scrapes (monitoring.ts). */
export const HEALTH_PORT_NAME = 'health';
/** What the runner needs after its grace to close its connections and exit, inside the pod's grace. */
const SHUTDOWN_MARGIN_SECONDS = 15;
const RUNNER_UID = 1000;
const MODEL_DIR = '/models';
/**
 * The Cloud SDK image the model is copied with; `gcloud storage` is in every variant. By digest
 * (images.lock.json) straight from gcr.io rather than through a mirror: it is Google's own registry
 * (served by Artifact Registry), reached from the private nodes through Private Google Access, with
 * no pull limits to shield against; the digest fixes the bytes, which `:slim` alone (rebuilt with
 * every SDK release) would not.
 */
const GCLOUD_IMAGE = pinned('gcr.io/google.com/cloudsdktool/google-cloud-cli:slim');

export interface RunnerProps {
  env: Environment;
  /** Tag of the runner image in the environment's Artifact Registry repository. */
  imageTag: string;
}

export class Runner extends Construct {
  /** Labels of the runner pods. */
  readonly podLabels = selectorLabels('runner');
  readonly deployment: kplus.Deployment;

  constructor(scope: Construct, id: string, props: RunnerProps) {
    super(scope, id);
    const { env } = props;

    // Workload Identity: the pod acts as the runner's Google service account, which may write
    // images and read the models bucket; no key file exists anywhere.
    const serviceAccount = new kplus.ServiceAccount(this, 'service-account', {
      metadata: {
        name: env.kubernetes.runnerServiceAccount,
        annotations: { 'iam.gke.io/gcp-service-account': serviceAccountEmail(env, 'runner') },
      },
      automountToken: false,
    });

    const settings: Record<string, string> = {
      MODEL_DIR,
      DATA_DIR: '/tmp/itemgen',
      AMQP_PREFIX: env.amqpPrefix,
      GCS_BUCKET: bucketName(env, 'images'),
      EXECUTION_PROVIDER: 'cuda',
      RUNNER_HEALTH_HOST: '0.0.0.0',
      RUNNER_HEALTH_PORT: String(HEALTH_PORT),
      // The runner's own grace, inside the pod's: a generation it cannot finish in time goes back
      // to the queue unacked, before the kubelet's SIGKILL.
      RUNNER_GRACE_SECONDS: String(env.runner.graceSeconds - SHUTDOWN_MARGIN_SECONDS),
      LOG_LEVEL: 'info',
      ...tracingSettings(env),
    };
    const config = new kplus.ConfigMap(this, 'config', { metadata: { name: 'runner-config' }, data: settings });

    this.deployment = new kplus.Deployment(this, 'deployment', {
      metadata: { name: 'runner' },
      select: false,
      podMetadata: {
        labels: this.podLabels,
        // Variables are read at start only: a changed ConfigMap must roll the pods.
        annotations: { 'itemgen.dev/config-sha256': sha256(JSON.stringify(settings)) },
      },
      serviceAccount,
      automountServiceAccountToken: false,
      securityContext: { ensureNonRoot: true, user: RUNNER_UID, group: RUNNER_UID, fsGroup: RUNNER_UID },
      terminationGracePeriod: Duration.seconds(env.runner.graceSeconds),
      // One pod at a time, the old one first: each pod holds a whole GPU node, and at the pool's
      // maximum a surge pod would wait for a node that cannot come.
      strategy: kplus.DeploymentStrategy.rollingUpdate({
        maxSurge: kplus.PercentOrAbsolute.absolute(0),
        maxUnavailable: kplus.PercentOrAbsolute.absolute(1),
      }),
    });
    this.deployment.select(kplus.LabelSelector.of({ labels: this.podLabels }));
    // KEDA owns the replica count (from zero); the Deployment must not set one.
    this.deployment.markHasAutoscaler();

    // The model folder is copied from the models bucket into a node-local emptyDir by an init
    // container, before the runner starts. Rather than a PersistentVolume: a ReadOnlyMany disk
    // would have to be built and attached by hand for every model, and a disk in one zone ties the
    // runners to it while GPUs are found in any zone. Rather than baking it into the image: the
    // model (GBs) changes on its own schedule, not the code's. A GPU node takes minutes to start;
    // the copy, from a bucket in the same region, is short beside that. Each model version is its
    // own folder, never rewritten, so every pod of a rollout loads the same bytes.
    const models = kplus.Volume.fromEmptyDir(this, 'models', 'models', { sizeLimit: Size.gibibytes(20) });
    const tmp = kplus.Volume.fromEmptyDir(this, 'tmp', 'tmp', { sizeLimit: Size.gibibytes(1) });

    const copy = this.deployment.addInitContainer({
      name: 'fetch-model',
      image: GCLOUD_IMAGE,
      command: ['gcloud', 'storage', 'rsync', '--recursive', `gs://${bucketName(env, 'models')}/${env.runner.model}`, MODEL_DIR],
      // gcloud keeps its state under its configuration directory; the root filesystem is read-only.
      envVariables: { CLOUDSDK_CONFIG: kplus.EnvValue.fromValue('/tmp/gcloud') },
      resources: {
        cpu: { request: cpu('1'), limit: cpu('1') },
        memory: { request: memory('1Gi'), limit: memory('1Gi') },
      },
      securityContext: restrictedContainer(RUNNER_UID, true),
    });
    copy.mount(MODEL_DIR, models);
    copy.mount('/tmp', tmp);

    const secret = kplus.Secret.fromSecretName(this, 'secret', runnerSecret.name);
    const runner = this.deployment.addContainer({
      name: 'runner',
      image: `${imageRepository(env, 'runner')}:${props.imageTag}`,
      ports: [{ name: HEALTH_PORT_NAME, number: HEALTH_PORT }],
      envFrom: [kplus.Env.fromConfigMap(config)],
      envVariables: {
        RUNNER_ID: kplus.EnvValue.fromFieldRef(kplus.EnvFieldPaths.POD_NAME),
        RUNNER_TOKEN: kplus.EnvValue.fromSecretValue({ secret, key: runnerSecret.token }),
        AMQP_URL: kplus.EnvValue.fromSecretValue({ secret, key: runnerSecret.amqpUrl }),
        GATEWAY_URL: kplus.EnvValue.fromSecretValue({ secret, key: runnerSecret.gatewayUrl }),
      },
      // Ready: consuming the queue. /healthz answers 503 while the model loads and while the runner
      // stops, so it cannot be the liveness check: a stopping runner would be killed mid-generation.
      readiness: kplus.Probe.fromHttpGet('/healthz', {
        port: HEALTH_PORT,
        periodSeconds: Duration.seconds(10),
        timeoutSeconds: Duration.seconds(5),
        failureThreshold: 3,
      }),
      // Alive: the process still answers HTTP (its event loop turns), whatever the broker and the
      // gateway are doing. /metrics is served from the first second of the process.
      liveness: kplus.Probe.fromHttpGet('/metrics', {
        port: HEALTH_PORT,
        initialDelaySeconds: Duration.seconds(10),
        periodSeconds: Duration.seconds(20),
        timeoutSeconds: Duration.seconds(10),
        failureThreshold: 3,
      }),
      resources: {
        cpu: { request: cpu(env.runner.cpu), limit: cpu(env.runner.cpu) },
        memory: { request: memory(env.runner.memory), limit: memory(env.runner.memory) },
      },
      securityContext: restrictedContainer(RUNNER_UID, true),
    });
    runner.mount(MODEL_DIR, models, { readOnly: true });
    runner.mount('/tmp', tmp);

    // Only GPU nodes of the environment's type carry the label; their taint keeps everything else
    // off them. cdk8s-plus has no GPU resource and no plain nodeSelector, hence the patches.
    this.deployment.scheduling.tolerate(
      kplus.Node.tainted(kplus.NodeTaintQuery.exists('nvidia.com/gpu', { effect: kplus.TaintEffect.NO_SCHEDULE })),
    );
    ApiObject.of(this.deployment).addJsonPatch(
      JsonPatch.add('/spec/template/spec/containers/0/resources/limits/nvidia.com~1gpu', kplus.k8s.Quantity.fromString('1')),
      JsonPatch.add('/spec/template/spec/nodeSelector', { 'cloud.google.com/gke-accelerator': env.gke.gpuType }),
    );
  }
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
