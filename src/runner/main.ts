// Entry point of the runner process (`npm run runner`; the runner container's command). On SIGTERM
// it stops taking jobs, gives the current ones RUNNER_GRACE_SECONDS to finish (else hands them back
// to the queue unacked), and exits 0.
import { runUntilSignal } from '../core/process.ts';
import { parseRunnerConfig } from './config.ts';
import { startRunner } from './service.ts';

// runUntilSignal also reads the shared variables (LOG_LEVEL, AMQP_URL, …) the gateway's way; the
// runner's own configuration is parsed here, and a ConfigError from it exits 2 the same way.
await runUntilSignal('runner', async () => startRunner(parseRunnerConfig()));
