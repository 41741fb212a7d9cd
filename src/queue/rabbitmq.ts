// RabbitMQ through amqplib: durable topology declared on every (re)connection, a quorum work
// queue with a delivery limit and a dead-letter queue, persistent messages published on a confirm
// channel, and amqplib's own reconnection (exponential backoff with jitter) after a broker restart.
// Publishing while disconnected fails at once: the database is the buffer (docs/architecture.md,
// decision 3), so the dispatcher simply tries again when `onConnected` fires.
import amqp, { type Channel, type ChannelModel, type ConfirmChannel, type ConsumeMessage } from 'amqplib';
import { encodeJobMessage, type JobMessage } from '../core/message.ts';
import type { Logger } from '../core/log.ts';
import { settleOnce } from '../core/once.ts';
import { isCertificateError } from '../core/tls.ts';
import { QueueUnavailableError, type Consumer, type DeadLetter, type Delivery, type JobQueue } from './types.ts';

export interface Topology {
  exchange: string;
  routingKey: string;
  workQueue: string;
  deadExchange: string;
  deadQueue: string;
}

export function topologyFor(prefix: string): Topology {
  return {
    exchange: `${prefix}.jobs`,
    routingKey: 'generate',
    workQueue: `${prefix}.generate`,
    deadExchange: `${prefix}.dead`,
    deadQueue: `${prefix}.generate.dead`,
  };
}

export async function declareTopology(ch: Channel, t: Topology, deliveryLimit: number): Promise<void> {
  await ch.assertExchange(t.exchange, 'direct', { durable: true });
  await ch.assertExchange(t.deadExchange, 'fanout', { durable: true });
  await ch.assertQueue(t.workQueue, {
    durable: true,
    arguments: {
      'x-queue-type': 'quorum',
      'x-delivery-limit': deliveryLimit,
      'x-dead-letter-exchange': t.deadExchange,
      // at-least-once dead-lettering keeps a message until the dead-letter queue confirms it.
      'x-dead-letter-strategy': 'at-least-once',
      'x-overflow': 'reject-publish',
    },
  });
  await ch.assertQueue(t.deadQueue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
  await ch.bindQueue(t.workQueue, t.exchange, t.routingKey);
  await ch.bindQueue(t.deadQueue, t.deadExchange, '');
}

export interface RabbitOptions {
  url: string;
  /** With an amqps URL: PEM CA certificates the broker's chain is verified against, instead of Node's (host name checked as usual). */
  caCert?: string | undefined;
  /**
   * Longest a connection may take to open (TCP, TLS and AMQP handshakes), then it is tried again;
   * without it a broker that accepts and never answers (a partition) holds the attempt for good.
   */
  connectTimeoutMs?: number | undefined;
  prefix: string;
  deliveryLimit: number;
  log: Logger;
  /** Reconnection backoff bounds, ms. */
  initialDelayMs?: number;
  maxDelayMs?: number;
}

interface Subscription {
  queue: string;
  prefetch: number;
  onMessage: (ch: Channel, msg: ConsumeMessage) => void;
  channel: Channel | null;
  tag: string | null;
  active: boolean;
}

export async function connectRabbitMq(options: RabbitOptions): Promise<JobQueue> {
  const t = topologyFor(options.prefix);
  const { log } = options;
  const subscriptions = new Set<Subscription>();
  const connectedListeners: (() => void)[] = [];
  let publisher: ConfirmChannel | null = null;
  let closing = false;

  const subscribe = async (model: ChannelModel, s: Subscription) => {
    const ch = await model.createChannel();
    ch.on('error', (err) => log.warn('consumer channel error', { err }));
    await ch.prefetch(s.prefetch);
    const { consumerTag } = await ch.consume(s.queue, (msg) => msg && s.onMessage(ch, msg), { noAck: false });
    s.channel = ch;
    s.tag = consumerTag;
  };

  const connection = await amqp.connect(options.url, {
    ...(options.caCert ? { ca: [options.caCert] } : {}),
    ...(options.connectTimeoutMs ? { timeout: options.connectTimeoutMs } : {}),
    recovery: {
      waitForConnect: false,
      initialDelay: options.initialDelayMs ?? 200,
      maxDelay: options.maxDelayMs ?? 10_000,
      factor: 2,
      jitter: 0.3,
      maxRetries: Infinity,
      async setup(model: ChannelModel) {
        const ch = await model.createConfirmChannel();
        ch.on('error', (err) => log.warn('publisher channel error', { err }));
        ch.on('close', () => {
          if (publisher === ch) publisher = null;
        });
        await declareTopology(ch, t, options.deliveryLimit);
        for (const s of subscriptions) if (s.active) await subscribe(model, s);
        publisher = ch;
      },
    },
  });
  connection.on('error', (err) => log.warn('broker connection error', { err }));
  connection.on('disconnect', (err) => {
    publisher = null;
    for (const s of subscriptions) s.channel = null;
    if (!closing) log.warn('broker connection lost; reconnecting', { err });
  });
  // A broker that is down is retried quietly; a certificate refused is a configuration problem
  // that no retry mends, so it is said at every attempt.
  connection.on('connect-failed', (err: Error) => {
    if (isCertificateError(err)) log.error("broker's TLS certificate refused (AMQP_CA_CERT, AMQP_URL's host); retrying", { err });
  });
  connection.on('reconnect-scheduled', ({ attempt, delay, error }) =>
    log.debug('broker reconnect scheduled', { attempt, delay_ms: delay, err: error }),
  );
  connection.on('connect', () => {
    log.info('broker connected', { exchange: t.exchange, queue: t.workQueue });
    for (const l of connectedListeners) l();
  });

  const addSubscription = async (queue: string, prefetch: number, onMessage: Subscription['onMessage']) => {
    const s: Subscription = { queue, prefetch, onMessage, channel: null, tag: null, active: true };
    subscriptions.add(s);
    // Subscribe now when connected; otherwise setup() does it on the next connection.
    if (publisher) {
      const model = await connection.waitForConnect();
      await subscribe(model as unknown as ChannelModel, s);
    }
    return {
      async cancel() {
        s.active = false;
        subscriptions.delete(s);
        // The channel stays open so the holder can still settle what it holds (a stopping runner
        // requeues the messages that arrived while it stopped); it closes with the connection.
        if (s.channel && s.tag) await s.channel.cancel(s.tag).catch(() => {});
      },
    };
  };

  const deliveryCount = (msg: ConsumeMessage) => {
    const header = msg.properties.headers?.['x-delivery-count'];
    return (typeof header === 'number' ? header : 0) + 1;
  };

  return {
    kind: 'amqp',
    isConnected: () => publisher !== null,
    onConnected(listener) {
      connectedListeners.push(listener);
      if (publisher) queueMicrotask(listener);
    },
    async publish(messages: JobMessage[], headers) {
      const ch = publisher;
      if (!ch) throw new QueueUnavailableError('broker not connected');
      await Promise.all(
        messages.map(
          (m) =>
            new Promise<void>((resolve, reject) => {
              ch.publish(
                t.exchange,
                t.routingKey,
                encodeJobMessage(m),
                { persistent: true, mandatory: false, contentType: 'application/json', messageId: m.id, type: 'generation.v1', headers: headers?.get(m.id) },
                (err) => (err ? reject(new QueueUnavailableError(`broker did not confirm ${m.id}`)) : resolve()),
              );
            }),
        ),
      );
    },
    async consume(handler, { prefetch }): Promise<Consumer> {
      return addSubscription(t.workQueue, prefetch, (ch, msg) => {
        const settle = settleOnce();
        const once = (f: () => void) =>
          settle(() => {
            try {
              f();
            } catch (err) {
              // The channel died under us; the broker redelivers the message.
              log.warn('could not settle message', { err });
            }
          });
        const delivery: Delivery = {
          body: msg.content,
          deliveryCount: deliveryCount(msg),
          headers: msg.properties.headers ?? {},
          ack: once(() => ch.ack(msg)),
          requeue: once(() => ch.nack(msg, false, true)),
          reject: once(() => ch.nack(msg, false, false)),
        };
        Promise.resolve()
          .then(() => handler(delivery))
          .catch((err) => {
            log.error('consumer handler failed; message requeued', { err });
            delivery.requeue();
          });
      });
    },
    async consumeDeadLetters(handler): Promise<Consumer> {
      return addSubscription(t.deadQueue, 16, (ch, msg) => {
        const reason = msg.properties.headers?.['x-first-death-reason'] === 'delivery_limit' ? 'delivery_limit' : 'rejected';
        const letter: DeadLetter = { body: msg.content, reason, ack: () => ch.ack(msg) };
        Promise.resolve()
          .then(() => handler(letter))
          .catch((err) => {
            log.error('dead-letter handler failed; message requeued', { err });
            ch.nack(msg, false, true);
          });
      });
    },
    async close() {
      closing = true;
      await connection.close().catch(() => {});
    },
  };
}
