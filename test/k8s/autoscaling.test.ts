import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { kedaRabbitmqSecret } from '../../k8s/secrets.ts';
import { eachEnvironment, one } from '../helpers/manifests.ts';

test('runners scale on the work queue length (waiting + held messages), from zero to the environment maximum', () => {
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
          // Not amqp: it counts waiting messages only, 0 while every runner is busy.
          protocol: 'http',
          vhostName: '/',
          queueName: `${env.amqpPrefix}.generate`,
          mode: 'QueueLength',
          value: String(env.runner.queueLengthPerRunner),
        },
        authenticationRef: { name: 'runner-rabbitmq' },
      },
    ]);
  }
});

test('KEDA reads the management API URL from its own Secret, a reference only', () => {
  for (const [, objects] of eachEnvironment()) {
    const auth = one(objects, 'TriggerAuthentication', 'runner-rabbitmq');
    assert.equal(auth.spec, {
      secretTargetRef: [{ parameter: 'host', name: kedaRabbitmqSecret.name, key: kedaRabbitmqSecret.managementUrl }],
    });
  }
});

test.run();
