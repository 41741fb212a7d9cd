// Submitting a generation as a client does, for tests whose subject is what happens after: the
// submit itself must have been accepted, or every later assertion would be about the wrong thing.
import * as assert from 'uvu/assert';
import type { TestGateway } from './gateway.ts';

/** POSTs `body` to /v1/generations (as `key` when given), asserts 202 and returns the new id. */
export async function submit(gateway: TestGateway | string, body: Record<string, unknown>, key?: string): Promise<string> {
  const url = typeof gateway === 'string' ? gateway : gateway.url;
  const res = await fetch(`${url}/v1/generations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: JSON.stringify(body),
  });
  assert.is(res.status, 202, `submit: ${await res.clone().text()}`);
  return ((await res.json()) as { id: string }).id;
}

/**
 * A completed generation of `key` whose images are `pngs`, stored in the gateway's store as a
 * runner stores them; returns its id and image keys.
 */
export async function completed(t: TestGateway, key: string, pngs: Buffer[], body: Record<string, unknown> = { prompt: 'a glowing sword', num_images: pngs.length }) {
  const id = await submit(t, body, key);
  assert.is((await t.runner(`/generations/${id}/claim`, { runner_id: 'r' })).status, 200);
  const images = [];
  for (const [index, png] of pngs.entries()) images.push(await t.gw.images.putImage({ generationId: id, index, png, seed: index }));
  assert.is((await t.runner(`/generations/${id}/complete`, { attempt: 1, images })).status, 200);
  return { id, keys: images.map((i) => i.key) };
}
