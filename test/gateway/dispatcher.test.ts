// The dispatcher alone, on PostgreSQL and a recording queue: the in-memory fast path and the
// outbox sweep never publish the same job twice.
import postgres from 'postgres';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createLogger } from '../../src/core/log.ts';
import type { GenerationParams } from '../../src/core/request.ts';
import { startDispatcher } from '../../src/gateway/dispatcher.ts';
import { createGatewayMetrics } from '../../src/gateway/metrics.ts';
import { createMemoryQueue } from '../../src/queue/memory.ts';
import type { JobQueue } from '../../src/queue/types.ts';
import { openDb } from '../../src/store/openDb.ts';
import { migrate } from '../../src/store/migrate.ts';
import { ANONYMOUS_KEY_ID } from '../../src/store/apiKey.ts';
import { insertGeneration } from '../../src/store/sql/insertGeneration.ts';
import { countOutbox } from '../helpers/store.ts';
import { DATABASE_URL, uniqueName } from '../helpers/services.ts';

const params: GenerationParams = {
  prompt: 'a compass',
  negative_prompt: '',
  num_inference_steps: 20,
  guidance_scale: 7.5,
  seed: 7,
  width: 512,
  height: 512,
  scheduler: 'ddim',
  num_images: 1,
};

test('a job both buffered and swept (a reconnection right after its submit) is published once', async () => {
  const schema = uniqueName('itemgen_dispatcher');
  const db = await openDb({ databaseUrl: DATABASE_URL, dataDir: '', poolSize: 2, schema });
  await migrate(db);
  const inner = createMemoryQueue({ deliveryLimit: 5 });
  const published: string[] = [];
  const connected: (() => void)[] = [];
  // A queue whose connection events the test fires itself.
  const queue: JobQueue = {
    ...inner,
    onConnected: (listener) => void connected.push(listener),
    async publish(messages) {
      published.push(...messages.map((m) => m.id));
      await inner.publish(messages);
    },
  };
  const dispatcher = startDispatcher({
    db,
    queue,
    log: createLogger('silent'),
    metrics: createGatewayMetrics(() => true),
    batchSize: 100,
    sweepMs: 600_000,
    lingerMs: 0,
  });
  try {
    await dispatcher.drained();
    const g = (await insertGeneration(db, { apiKeyId: ANONYMOUS_KEY_ID, maxUnfinished: 100, maxUnfinishedCost: 1e9, idempotencyKey: null, requestHash: null, params }))!;
    // In one tick: the submit hands the job over and the broker (re)connects, which asks for a
    // sweep of everything in the outbox; the sweep runs first and finds the job's row.
    dispatcher.enqueue({ id: g.id, params });
    for (const listener of connected) listener();
    await dispatcher.drained();
    assert.equal(published, [g.id]);
    assert.is(await countOutbox(db), 0);
  } finally {
    await dispatcher.stop();
    await inner.close();
    await db.close();
    const sql = postgres(DATABASE_URL, { max: 1, onnotice: () => {} });
    await sql.unsafe(`DROP SCHEMA "${schema}" CASCADE`);
    await sql.end();
  }
});

test.run();
