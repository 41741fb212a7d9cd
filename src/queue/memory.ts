// The in-process queue of the embedded mode: the same contract as RabbitMQ's quorum queue
// (prefetch, manual ack, redelivery count, delivery limit, dead letters), without a broker.
import { encodeJobMessage, type JobMessage } from '../core/message.ts';
import { settleOnce } from '../core/once.ts';
import type { Consumer, DeadLetter, DeadLetterReason, Delivery, JobQueue } from './types.ts';

interface Entry {
  body: Buffer;
  headers: Record<string, string>;
  deliveries: number;
}

interface MemoryConsumer {
  handler: (d: Delivery) => void | Promise<void>;
  prefetch: number;
  inFlight: number;
  active: boolean;
}

export function createMemoryQueue(options: { deliveryLimit: number }): JobQueue {
  const ready: Entry[] = [];
  const dead: { body: Buffer; reason: DeadLetterReason }[] = [];
  const consumers: MemoryConsumer[] = [];
  const deadConsumers: ((l: DeadLetter) => void | Promise<void>)[] = [];
  let closed = false;

  const pump = () => {
    for (const c of consumers) {
      while (c.active && c.inFlight < c.prefetch && ready.length > 0) {
        const entry = ready.shift()!;
        entry.deliveries += 1;
        c.inFlight += 1;
        const once = settleOnce();
        const settle = (then: () => void) =>
          once(() => {
            c.inFlight -= 1;
            then();
            queueMicrotask(pump);
          });
        const delivery: Delivery = {
          body: entry.body,
          deliveryCount: entry.deliveries,
          headers: entry.headers,
          ack: settle(() => {}),
          requeue: settle(() => {
            // As RabbitMQ: dead once returned more times than the limit.
            if (entry.deliveries > options.deliveryLimit) toDead(entry.body, 'delivery_limit');
            else ready.push(entry);
          }),
          reject: settle(() => toDead(entry.body, 'rejected')),
        };
        Promise.resolve()
          .then(() => c.handler(delivery))
          .catch(() => delivery.requeue());
      }
    }
  };

  const toDead = (body: Buffer, reason: DeadLetterReason) => {
    dead.push({ body, reason });
    queueMicrotask(pumpDead);
  };

  const pumpDead = () => {
    const handler = deadConsumers[0];
    while (handler && dead.length > 0) {
      const letter = dead.shift()!;
      Promise.resolve()
        .then(() => handler({ ...letter, ack: () => {} }))
        .catch(() => dead.push(letter));
    }
  };

  return {
    kind: 'memory',
    isConnected: () => !closed,
    onConnected: (listener) => queueMicrotask(listener),
    async publish(messages: JobMessage[], headers) {
      if (closed) throw new Error('queue closed');
      for (const m of messages) ready.push({ body: encodeJobMessage(m), headers: headers?.get(m.id) ?? {}, deliveries: 0 });
      queueMicrotask(pump);
    },
    async consume(handler, { prefetch }): Promise<Consumer> {
      const c: MemoryConsumer = { handler, prefetch, inFlight: 0, active: true };
      consumers.push(c);
      queueMicrotask(pump);
      return {
        async cancel() {
          c.active = false;
          consumers.splice(consumers.indexOf(c), 1);
        },
      };
    },
    async consumeDeadLetters(handler) {
      deadConsumers.push(handler);
      queueMicrotask(pumpDead);
      return {
        async cancel() {
          deadConsumers.splice(deadConsumers.indexOf(handler), 1);
        },
      };
    },
    async close() {
      closed = true;
      for (const c of consumers) c.active = false;
    },
  };
}
