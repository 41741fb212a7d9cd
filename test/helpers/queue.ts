// Broker cleanup for tests and benchmarks, which each declare their own prefix's names: the product
// never deletes its topology, so this stays out of src/queue.
import amqp from 'amqplib';
import { topologyFor } from '../../src/queue/rabbitmq.ts';

/** Removes a prefix's exchanges and queues (tests and benchmarks clean up their own names). */
export async function deleteTopology(url: string, prefix: string): Promise<void> {
  const t = topologyFor(prefix);
  const conn = await amqp.connect(url);
  try {
    const ch = await conn.createChannel();
    for (const q of [t.workQueue, t.deadQueue]) await ch.deleteQueue(q);
    for (const x of [t.exchange, t.deadExchange]) await ch.deleteExchange(x);
  } finally {
    await conn.close();
  }
}
