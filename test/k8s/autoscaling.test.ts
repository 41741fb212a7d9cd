import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runnerSecret } from '../../k8s/secrets.ts';
import { container, eachEnvironment, envOf, one } from '../helpers/manifests.ts';

test('runners scale on the work queue length, from zero to the environment maximum', () => {
  for (const [env, objects] of eachEnvironment()) {
    const scaled = one(objects, 'ScaledObject', 'runner');
    assert.is(scaled.apiVersion, 'keda.sh/v1alpha1');
    assert.equal(scaled.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: 'runner' });
    one(objects, 'Deployment', scaled.spec.scaleTargetRef.name);
    assert.is(scaled.spec.minReplicaCount, 0);
    assert.is(scaled.spec.maxReplicaCount, env.runner.maxReplicas);
    assert.equal(scaled.spec.triggers, [
      {
        type: 'rabbitmq',
        metadata: {
          protocol: 'amqp',
          queueName: `${env.amqpPrefix}.generate`,
          mode: 'QueueLength',
          value: String(env.runner.queueLengthPerRunner),
        },
        authenticationRef: { name: 'runner-rabbitmq' },
      },
    ]);
  }
});

test('KEDA reads the broker with the same AMQP URL, from the same Secret key, as the runners', () => {
  for (const [, objects] of eachEnvironment()) {
    const auth = one(objects, 'TriggerAuthentication', 'runner-rabbitmq');
    assert.equal(auth.spec, { secretTargetRef: [{ parameter: 'host', name: runnerSecret.name, key: runnerSecret.amqpUrl }] });
    const runnerAmqp = envOf(container(one(objects, 'Deployment', 'runner'), 'runner')).AMQP_URL;
    assert.equal(runnerAmqp, { valueFrom: { secretKeyRef: { name: auth.spec.secretTargetRef[0].name, key: auth.spec.secretTargetRef[0].key } } });
  }
});

test.run();
