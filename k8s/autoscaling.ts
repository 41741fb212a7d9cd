// Runners scale on the work queue's depth with KEDA: one runner per `queueLengthPerRunner` waiting
// messages, up to the environment's maximum, and none at all while the queue is empty (the GPU
// pool then shrinks to zero nodes). KEDA itself is installed in the cluster (namespace `keda`,
// network-policies.ts admits it to AMQP); its CRD types come from k8s/imports (k8s/crds/keda.yaml).
import * as kplus from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import type { Environment } from '../infra/environments.ts';
import { topologyFor } from '../src/queue/rabbitmq.ts';
import { ScaledObject, TriggerAuthentication } from './imports/keda.sh.ts';
import { runnerSecret } from './secrets.ts';

export interface RunnerAutoscalingProps {
  env: Environment;
  runners: kplus.Deployment;
}

export class RunnerAutoscaling extends Construct {
  constructor(scope: Construct, id: string, props: RunnerAutoscalingProps) {
    super(scope, id);
    const { env, runners } = props;

    // KEDA reads the queue with the runners' own AMQP URL, from their Secret.
    const auth = new TriggerAuthentication(this, 'rabbitmq-auth', {
      metadata: { name: 'runner-rabbitmq' },
      spec: {
        secretTargetRef: [{ parameter: 'host', name: runnerSecret.name, key: runnerSecret.amqpUrl }],
      },
    });

    new ScaledObject(this, 'scaled-object', {
      metadata: { name: 'runner' },
      spec: {
        scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: runners.name },
        minReplicaCount: 0,
        maxReplicaCount: env.runner.maxReplicas,
        pollingInterval: 15,
        // Over AMQP the queue length counts waiting messages only, not the ones runners hold. Once
        // the queue is empty, runners still finish what they hold: the last one is stopped only
        // after this long without waiting messages, and a stopped runner gets its grace period.
        cooldownPeriod: 300,
        triggers: [
          {
            type: 'rabbitmq',
            metadata: {
              protocol: 'amqp',
              queueName: topologyFor(env.amqpPrefix).workQueue,
              mode: 'QueueLength',
              value: String(env.runner.queueLengthPerRunner),
            },
            authenticationRef: { name: auth.name },
          },
        ],
      },
    });
  }
}
