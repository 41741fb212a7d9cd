import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bucketName, imageRepository, serviceAccountEmail } from '../../infra/environments.ts';
import { runnerAmqpHost, runnerSecret } from '../../k8s/secrets.ts';
import { parseRunnerConfig } from '../../src/runner/config.ts';
import { tracingSettings } from '../../infra/environments.ts';
import { container, eachEnvironment, envOf, one } from '../helpers/manifests.ts';

test('one GPU per pod, on GPU nodes of the environment type, tolerating their taint', () => {
  for (const [env, objects] of eachEnvironment()) {
    const pod = one(objects, 'Deployment', 'runner').spec.template.spec;
    const runner = container(one(objects, 'Deployment', 'runner'), 'runner');
    assert.is(runner.resources.limits['nvidia.com/gpu'], '1');
    assert.equal(pod.nodeSelector, { 'cloud.google.com/gke-accelerator': env.gke.gpuType });
    assert.equal(pod.tolerations, [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }]);
  }
});

test('CPU and memory requests equal limits, from the environment settings', () => {
  for (const [, objects] of eachEnvironment()) {
    const { resources } = container(one(objects, 'Deployment', 'runner'), 'runner');
    assert.equal(resources.requests, { cpu: '4', memory: '16384Mi' });
    assert.equal(resources.limits, { cpu: '4', memory: '16384Mi', 'nvidia.com/gpu': '1' });
  }
});

test('the runner image and Workload Identity of the environment', () => {
  for (const [env, objects] of eachEnvironment()) {
    const deployment = one(objects, 'Deployment', 'runner');
    assert.match(container(deployment, 'runner').image, new RegExp(`^${imageRepository(env, 'runner')}:\\d+\\.\\d+\\.\\d+$`));
    assert.is(deployment.spec.template.spec.serviceAccountName, env.kubernetes.runnerServiceAccount);
    const sa = one(objects, 'ServiceAccount', env.kubernetes.runnerServiceAccount);
    assert.is(sa.metadata.annotations['iam.gke.io/gcp-service-account'], serviceAccountEmail(env, 'runner'));
    assert.is(sa.automountServiceAccountToken, false);
  }
});

test('a stopping runner gets the grace period, and its own grace ends a little before it', () => {
  for (const [env, objects] of eachEnvironment()) {
    const deployment = one(objects, 'Deployment', 'runner');
    assert.is(deployment.spec.template.spec.terminationGracePeriodSeconds, env.runner.graceSeconds);
    const own = Number(one(objects, 'ConfigMap', 'runner-config').data.RUNNER_GRACE_SECONDS);
    const margin = env.runner.graceSeconds - own;
    assert.ok(margin > 0 && margin <= 30, `RUNNER_GRACE_SECONDS ${own} against a pod grace of ${env.runner.graceSeconds}`);
  }
});

test('readiness is /healthz (consuming), liveness /metrics (answers even while stopping), on the health port', () => {
  for (const [, objects] of eachEnvironment()) {
    const runner = container(one(objects, 'Deployment', 'runner'), 'runner');
    assert.equal(runner.readinessProbe.httpGet, { path: '/healthz', port: 8081, scheme: 'HTTP' });
    assert.equal(runner.livenessProbe.httpGet, { path: '/metrics', port: 8081, scheme: 'HTTP' });
    assert.equal(runner.ports, [{ containerPort: 8081, name: 'health' }]);
    assert.is(one(objects, 'ConfigMap', 'runner-config').data.RUNNER_HEALTH_PORT, '8081');
  }
});

test('secrets by reference; the ConfigMap and the Secret make a configuration the runner accepts', () => {
  for (const [env, objects] of eachEnvironment()) {
    const deployment = one(objects, 'Deployment', 'runner');
    const runner = container(deployment, 'runner');
    assert.equal(runner.envFrom, [{ configMapRef: { name: 'runner-config' } }]);
    const vars = envOf(runner);
    const ref = (key: string) => ({ valueFrom: { secretKeyRef: { name: runnerSecret.name, key } } });
    assert.equal(vars.RUNNER_TOKEN, ref(runnerSecret.token));
    assert.equal(vars.AMQP_URL, ref(runnerSecret.amqpUrl));
    assert.equal(vars.GATEWAY_URL, ref(runnerSecret.gatewayUrl));

    const data: Record<string, string> = one(objects, 'ConfigMap', 'runner-config').data;
    const config = parseRunnerConfig({
      ...data,
      RUNNER_TOKEN: 'a-bootstrap-token-of-32-characters',
      AMQP_URL: `amqp://itemgen:secret@${runnerAmqpHost(env)}:5672`,
      GATEWAY_URL: 'https://gateway.example',
    });
    assert.is(config.modelDir, '/models');
    assert.is(config.executionProvider, 'cuda');
    assert.is(config.amqpPrefix, env.amqpPrefix);
    assert.is(config.gcsBucket, bucketName(env, 'images'));
    assert.is(config.healthPort, 8081);
    assert.is(config.healthHost, '0.0.0.0');
  }
});

test('the model is copied from the models bucket into a volume the runner mounts read-only', () => {
  for (const [env, objects] of eachEnvironment()) {
    const deployment = one(objects, 'Deployment', 'runner');
    const fetch = container(deployment, 'fetch-model');
    assert.equal(fetch.command.slice(-2), [`gs://${bucketName(env, 'models')}/${env.runner.model}`, '/models']);
    assert.ok(fetch.volumeMounts.some((m: any) => m.name === 'models' && m.mountPath === '/models' && !m.readOnly));
    const runner = container(deployment, 'runner');
    assert.ok(runner.volumeMounts.some((m: any) => m.name === 'models' && m.mountPath === '/models' && m.readOnly === true));
    assert.ok(deployment.spec.template.spec.volumes.some((v: any) => v.name === 'models' && v.emptyDir));
  }
});

test('KEDA owns the replica count; a changed ConfigMap rolls the pods', () => {
  const hashes = eachEnvironment().map(([, objects]) => {
    const deployment = one(objects, 'Deployment', 'runner');
    assert.is(deployment.spec.replicas, undefined);
    const hash = deployment.spec.template.metadata.annotations['itemgen.dev/config-sha256'];
    assert.match(hash, /^[0-9a-f]{64}$/);
    return hash;
  });
  assert.is(new Set(hashes).size, hashes.length, 'environments with different settings have different hashes');
});

test("the runners' traces: to Cloud Trace in the environment's project with the gateway's sampling, as the runner reads them", () => {
  for (const [env, objects] of eachEnvironment()) {
    const data = one(objects, 'ConfigMap', 'runner-config').data as Record<string, string>;
    for (const [k, v] of Object.entries(tracingSettings(env))) assert.is(data[k], v, `${env.name} ${k}`);
    const { telemetry } = parseRunnerConfig({ ...data, GATEWAY_URL: 'https://gw.example', RUNNER_TOKEN: 'a-runner-token-of-32-characters!', AMQP_URL: 'amqps://mq.example' });
    assert.is(telemetry.exporter, 'gcp');
    assert.is(telemetry.samplerRatio, env.traceSampleRatio);
  }
});

test.run();
