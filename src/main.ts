// `npm start`: the whole product in one process with no configuration (src/product.ts).
import { runUntilSignal } from './core/process.ts';
import { startProduct } from './product.ts';

await runUntilSignal('itemgen', (config) => startProduct(config, process.env));
