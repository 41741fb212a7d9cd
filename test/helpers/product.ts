// The whole product as `npm start` runs it (PGlite, the in-process queue, the tiny model, local
// images) in its own folder, for tests that use it as a client would.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../../src/core/log.ts';
import { parseConfig } from '../../src/gateway/config.ts';
import { startProduct, type Product } from '../../src/product.ts';

export interface TestProduct {
  product: Product;
  url: string;
  stop(): Promise<void>;
}

/** `env` configures the gateway, `runnerEnv` adds to the embedded runner's. */
export async function startEmbeddedProduct(env: Record<string, string> = {}, runnerEnv: Record<string, string> = {}): Promise<TestProduct> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'itemgen-client-'));
  const config = parseConfig({ PORT: '0', DATA_DIR: dir, LOG_LEVEL: 'silent', RATE_LIMIT_SUBMIT: 'off', RATE_LIMIT_REQUEST: 'off', RATE_LIMIT_ADDRESS: 'off', ...env });
  const product = await startProduct(config, { LOG_LEVEL: 'silent', EXECUTION_PROVIDER: 'cpu', ...runnerEnv }, { log: createLogger('silent') });
  return {
    product,
    url: product.gateway.url,
    async stop() {
      await product.close();
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}
