// `npm start`: the whole product in one process with no configuration (ARCHITECTURE.md decision 5).
// Today that is the gateway with its embedded store and queue; the runner joins it (issue 4).
import { runUntilSignal } from './core/process.ts';
import { startGateway } from './gateway/service.ts';

await runUntilSignal('itemgen', (config) => startGateway(config));
