// Runners scale on the work queue's depth with KEDA: one runner per `queueLengthPerRunner`
// unfinished messages (waiting, or held by a runner), up to the environment's maximum, and none at
// all once there are none (the GPU pool then shrinks to zero nodes). KEDA itself is installed in
// the cluster (namespace `keda`; network-policies.ts admits it to the management API); its CRD
// types come from k8s/imports (k8s/crds/keda.yaml).
import * as kplus from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import type { Environment } from '../infra/environments.ts';
import { topologyFor } from '../src/queue/rabbitmq.ts';
import { ScaledObject, TriggerAuthentication } from './imports/keda.sh.ts';
import { kedaRabbitmqSecret } from './secrets.ts';

export interface RunnerAutoscalingProps {
  env: Environment;
  runners: kplus.Deployment;
}

export class RunnerAutoscaling extends Construct {
  constructor(scope: Construct, id: string, props: RunnerAutoscalingProps) {
    super(scope, id);
    const { env, runners } = props;

    const auth = new TriggerAuthentication(this, 'rabbitmq-auth', {
      metadata: { name: 'runner-rabbitmq' },
      spec: {
        secretTargetRef: [{ parameter: 'host', name: kedaRabbitmqSecret.name, key: kedaRabbitmqSecret.managementUrl }],
      },
    });

    new ScaledObject(this, 'scaled-object', {
      metadata: { name: 'runner' },
      spec: {
        scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: runners.name },
        minReplicaCount: 0,
        maxReplicaCount: env.runner.maxReplicas,
        pollingInterval: 15,
        // The last runner stops only after this long without any message, waiting or held.
        cooldownPeriod: 300,
        triggers: [
          {
            type: 'rabbitmq',
            metadata: {
              // Over AMQP the length counts waiting messages only. Every runner holds the ones it
              // works on (RUNNER_PREFETCH: the one generating and the next, claimed), so under a
              // steady load the waiting count sits at 0 while all
              // runners are busy, and KEDA would scale them away. The management API's count is
              // ready + unacknowledged: the work in the system.
              protocol: 'http',
              vhostName: '/',
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
