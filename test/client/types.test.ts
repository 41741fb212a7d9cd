// The SDK's generated types match the gateway's routes: a route or field added without running
// `npm run client:types` fails here (CI runs the tests), naming the command.
import fs from 'node:fs/promises';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { clientTypes, openapiDocument, REGENERATE, SCHEMA_FILE } from '../../scripts/client-types.ts';

test('src/client/schema.ts is what the current OpenAPI document generates', async () => {
  const fresh = await clientTypes();
  const committed = await fs.readFile(SCHEMA_FILE, 'utf8');
  assert.ok(committed === fresh, `src/client/schema.ts is stale: run \`${REGENERATE}\` and commit the result`);
});

test('the document is built without a database or broker, and holds the public API', async () => {
  const doc = (await openapiDocument()) as { openapi: string; paths: Record<string, unknown> };
  assert.is(doc.openapi, '3.1.0');
  for (const p of ['/v1/generations', '/v1/generations/{id}', '/v1/generations/{id}/cancel', '/v1/generations/{id}/events', '/v1/generations/{id}/images/{n}']) {
    assert.ok(p in doc.paths, p);
  }
  assert.not.ok(Object.keys(doc.paths).some((p) => p.startsWith('/internal')), 'the runners\' API is not in it');
});

test.run();
