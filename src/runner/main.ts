// Entry point of the runner process (`npm run runner`; the runner container's command). On SIGTERM
// it stops taking jobs, gives the current ones RUNNER_GRACE_SECONDS to finish (else hands them back
// to the queue unacked), and exits 0.
import { runUntilSignal } from '../core/process.ts';
import { parseRunnerConfig } from './config.ts';
import { startRunner } from './service.ts';

// Only the runner's variables are read: a gateway variable set wrong in a shared environment is
// none of the runner's business. A ConfigError exits 2 as the gateway's does.
await runUntilSignal('runner', parseRunnerConfig, (config) => startRunner(config));
