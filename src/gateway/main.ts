// Entry point of the gateway process (`npm run gateway`; the container's command).
import { runUntilSignal } from '../core/process.ts';
import { startGateway } from './service.ts';

await runUntilSignal('gateway', (config) => startGateway(config));
