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
