// Process lifecycle shared by the entry points: parse configuration, start, and stop cleanly on
// SIGTERM/SIGINT. A configuration error exits 2 with its message and no stack trace.
import { ConfigError, parseConfig, type Config } from './config.ts';
import { createLogger } from './log.ts';

export async function runUntilSignal(name: string, start: (config: Config) => Promise<{ close(): Promise<void> }>) {
  let config: Config;
  try {
    config = parseConfig();
  } catch (err) {
    process.stderr.write(`${name}: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const log = createLogger(config.logLevel, name);
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
