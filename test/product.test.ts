// The whole product through both API generations: as `npm start` runs it (no configuration:
// PGlite, the in-process queue, the tiny model generated on first start, local images), and on
// real PostgreSQL and RabbitMQ.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parseConfig } from '../src/gateway/config.ts';
import { createLogger } from '../src/core/log.ts';
import { deleteTopology } from './helpers/queue.ts';
import { startProduct, type Product } from '../src/product.ts';
import { decodePng } from '../src/runner/pipeline/png.ts';
import { AMQP_URL, DATABASE_URL, uniqueName } from './helpers/services.ts';
import { readSse } from './helpers/sse.ts';

for (const mode of ['embedded', 'postgres + rabbitmq'] as const) {
  const it = suite<{ dir: string; product: Product; url: string; schema: string; prefix: string }>(`the product, ${mode}`);

  it.before(async (ctx) => {
    ctx.dir = await fs.mkdtemp(path.join(os.tmpdir(), 'itemgen-product-'));
    ctx.schema = uniqueName('itemgen_product');
    ctx.prefix = uniqueName('itemgen-product');
    const services = mode === 'embedded' ? {} : { DATABASE_URL, AMQP_URL, AMQP_PREFIX: ctx.prefix };
    const config = parseConfig({ PORT: '0', DATA_DIR: ctx.dir, LOG_LEVEL: 'silent', ...services });
    ctx.product = await startProduct(
      config,
      { LOG_LEVEL: 'silent', EXECUTION_PROVIDER: 'cpu' },
      { log: createLogger('silent'), ...(mode === 'embedded' ? {} : { schema: ctx.schema }) },
    );
    ctx.url = ctx.product.gateway.url;
  });
  it.after(async ({ product, dir, schema, prefix }) => {
    await product.close();
    if (mode !== 'embedded') {
      const sql = postgres(DATABASE_URL, { max: 1, onnotice: () => {} });
      await sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await sql.end();
      await deleteTopology(AMQP_URL, prefix);
    }
    await fs.rm(dir, { recursive: true, force: true });
  });

  /** Follows the event stream until it ends; returns the last state. */
  async function untilFinished(url: string, id: string): Promise<any> {
    let last: any;
    for await (const event of readSse(await fetch(`${url}/v1/generations/${id}/events`))) last = JSON.parse(event.data);
    return last;
  }

  it('v1: submit → completed → the image link returns a PNG with the parameters', async ({ url }) => {
    const res = await fetch(`${url}/v1/generations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'a glowing sword', num_inference_steps: 4, width: 256, height: 256, seed: 7 }),
    });
    assert.is(res.status, 202);
    const { id } = (await res.json()) as any;
    const done = await untilFinished(url, id);
    assert.is(done.status, 'completed');
    const image = await fetch(done.images[0].url);
    assert.is(image.status, 200);
    const png = decodePng(Buffer.from(await image.arrayBuffer()));
    assert.is(png.width, 256);
    assert.match(png.texts.parameters!, /Seed: 7, Size: 256x256/);
  });

  it('v1, synchronous: Prefer: wait answers 200 with the completed generation once the runner made it', async ({ url }) => {
    const res = await fetch(`${url}/v1/generations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', prefer: 'wait=60' },
      body: JSON.stringify({ prompt: 'a glowing sword, tsuki_advtr', num_inference_steps: 3, width: 256, height: 256, seed: 11 }),
    });
    assert.is(res.status, 200);
    assert.is(res.headers.get('preference-applied'), 'wait=60');
    const done = (await res.json()) as any;
    assert.is(done.status, 'completed');
    const image = await fetch(done.images[0].url);
    assert.is(image.status, 200);
    assert.is(decodePng(Buffer.from(await image.arrayBuffer())).width, 256);
  });

  it('compatibility routes: POST /generate → Completed with an image_url that works', async ({ url }) => {
    const { request_id: id } = (await (
      await fetch(`${url}/generate`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ prompt: 'a shield', num_inference_steps: 3 }),
      })
    ).json()) as any;
    await untilFinished(url, id);
    const status = (await (await fetch(`${url}/status/${id}`)).json()) as any;
    assert.is(status.status, 'Completed');
    const image = await fetch(status.image_url);
    assert.is(image.status, 200);
    assert.is(decodePng(Buffer.from(await image.arrayBuffer())).width, 512, 'the old default size');
  });

  it('GET /v1/models lists the model the runner registered at start, with the request limits', async ({ url, product }) => {
    await product.runner.registered;
    const res = await fetch(`${url}/v1/models`);
    assert.is(res.status, 200);
    const { data } = (await res.json()) as any;
    assert.is(data.length, 1);
    const [model] = data;
    assert.is(model.name, 'tiny-model', 'the folder name, as its itemgen.json names none');
    assert.match(model.hash, /^[0-9a-f]{64}$/);
    assert.is(model.execution_provider, 'cpu');
    assert.is(model.default_scheduler, 'ddim');
    assert.is(model.default_negative_prompt, 'blurry, low quality');
    assert.is(model.prompt_prefix, 'tsuki_advtr, ');
    assert.equal(model.limits.width, { min: 256, max: 1024, multiple_of: 8, default: 512 });
    assert.is(model.limits.steps_per_scheduler.lcm.max, 50);
    assert.is(model.limits.num_images.max, 4);
    assert.type(model.limits.max_cost, 'number');
  });

  it('the tiny model was generated into DATA_DIR on first start', async ({ dir, product }) => {
    assert.is(product.runner.modelDir, path.join(dir, 'tiny-model'));
    await fs.access(path.join(dir, 'tiny-model', 'unet', 'model.onnx'));
  });

  it.run();
}
