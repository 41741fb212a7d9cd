// The queue interface shared by RabbitMQ (production) and the in-process queue (embedded mode).
import type { JobMessage } from '../core/message.ts';

export type DeadLetterReason = 'delivery_limit' | 'rejected';

export interface Delivery {
  /** The raw body; decode it with decodeJobMessage (an invalid body is the consumer's to dead-letter). */
  body: Buffer;
  /** 1 on first delivery, counting redeliveries after. */
  deliveryCount: number;
  /** The message's headers: the W3C trace context the publisher put there (src/telemetry/), the broker's own. */
  headers?: Readonly<Record<string, unknown>>;
  ack(): void;
  /** Back to the queue for another delivery (counts against the delivery limit). */
  requeue(): void;
  /** Straight to the dead-letter queue: the message can never succeed. */
  reject(): void;
}

export interface DeadLetter {
  body: Buffer;
  reason: DeadLetterReason;
  ack(): void;
}

export interface Consumer {
  /**
   * Stops new deliveries. Messages already delivered can still be acked or requeued until the
   * queue is closed; whatever is still unsettled then goes back to the queue.
   */
  cancel(): Promise<void>;
}

export interface JobQueue {
  readonly kind: 'amqp' | 'memory';
  /** Whether publishing can succeed now. */
  isConnected(): boolean;
  /** Called on every (re)connection; the dispatcher republishes what is waiting. */
  onConnected(listener: () => void): void;
  /**
   * Resolves once the broker has confirmed every message; rejects if any is not confirmed.
   * `headers` go with the message of that id (its trace context).
   */
  publish(messages: JobMessage[], headers?: ReadonlyMap<string, Record<string, string>>): Promise<void>;
  consume(handler: (delivery: Delivery) => void | Promise<void>, options: { prefetch: number }): Promise<Consumer>;
  consumeDeadLetters(handler: (letter: DeadLetter) => void | Promise<void>): Promise<Consumer>;
  close(): Promise<void>;
}

export class QueueUnavailableError extends Error {
  override name = 'QueueUnavailableError';
}
