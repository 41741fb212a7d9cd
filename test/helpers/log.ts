// A logger that keeps what it is told, so a test can assert on what was (or was not) logged.
import type { Logger } from '../../src/core/log.ts';

export interface LogEntry {
  level: 'debug' | 'info' | 'warn' | 'error';
  msg: string;
  fields: Record<string, unknown>;
}

export function recordingLogger(): Logger & { entries: LogEntry[]; at(level: LogEntry['level']): LogEntry[] } {
  const entries: LogEntry[] = [];
  const write = (level: LogEntry['level']) => (msg: string, fields: Record<string, unknown> = {}) => {
    entries.push({ level, msg, fields });
  };
  return {
    entries,
    at: (level) => entries.filter((e) => e.level === level),
    debug: write('debug'),
    info: write('info'),
    warn: write('warn'),
    error: write('error'),
  };
}
