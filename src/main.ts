// `npm start`: the whole product in one process with no configuration (src/product.ts).
import { runUntilSignal } from './core/process.ts';
import { parseConfig } from './gateway/config.ts';
import { startProduct } from './product.ts';

await runUntilSignal('itemgen', parseConfig, async (config) => {
  const product = await startProduct(config, process.env);
  // The one line a person starting it looks for, plain on stdout (the logs are JSON on stderr).
  process.stdout.write(`itemgen is running: open ${product.gateway.url}/ in a browser (the API is under ${product.gateway.url}/v1, its reference at ${product.gateway.url}/docs)\n`);
  return product;
});
