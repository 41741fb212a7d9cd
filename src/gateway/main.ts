// Entry point of the gateway process (`npm run gateway`; the container's command).
import { runUntilSignal } from '../core/process.ts';
import { parseConfig } from './config.ts';
import { startGateway } from './service.ts';

await runUntilSignal('gateway', parseConfig, (config) => startGateway(config));
