// Process lifecycle shared by the entry points: parse configuration, start, and stop cleanly on
// SIGTERM/SIGINT. A configuration error exits 2 with its message and no stack trace.
import { ConfigError } from './config.ts';
import { createLogger, type LogFormat } from './log.ts';

/**
 * Parses this process's own configuration with `parse` (each process reads only its variables),
 * then starts the service with it and keeps it until a signal.
 */
export async function runUntilSignal<C extends { logLevel: Parameters<typeof createLogger>[0]; logFormat: LogFormat }>(
  name: string,
  parse: () => C,
  start: (config: C) => Promise<{ close(): Promise<void> }>,
) {
  let config: C;
  try {
    config = parse();
  } catch (err) {
    process.stderr.write(`${name}: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const log = createLogger(config.logLevel, name, config.logFormat);
  let service: { close(): Promise<void> };
  try {
    service = await start(config);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${name}: ${err.message}\n`);
      process.exit(2);
    }
    log.error('failed to start', { err, stack: (err as Error).stack });
    process.exit(1);
  }
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info('stopping', { signal });
    await service.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}
