// `npm start`: the whole product in one process with no configuration (src/product.ts).
import { runUntilSignal } from './core/process.ts';
import { parseConfig } from './gateway/config.ts';
import { startProduct } from './product.ts';

await runUntilSignal('itemgen', parseConfig, (config) => startProduct(config, process.env));
