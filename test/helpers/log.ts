// A logger that keeps what it is told, so a test can assert on what was (or was not) logged.
import type { Logger } from '../../src/core/log.ts';

export interface LogEntry {
  level: 'debug' | 'info' | 'warn' | 'error';
  msg: string;
  fields: Record<string, unknown>;
}

export interface RecordingLogger extends Logger {
  entries: LogEntry[];
  at(level: LogEntry['level']): LogEntry[];
  /** The first entry (already logged or to come) that matches. */
  waitFor(match: (e: LogEntry) => boolean): Promise<LogEntry>;
}

export function recordingLogger(): RecordingLogger {
  const entries: LogEntry[] = [];
  const waiters = new Set<{ match: (e: LogEntry) => boolean; resolve: (e: LogEntry) => void }>();
  const write = (level: LogEntry['level']) => (msg: string, fields: Record<string, unknown> = {}) => {
    const entry = { level, msg, fields };
    entries.push(entry);
    for (const w of waiters) {
      if (w.match(entry)) {
        waiters.delete(w);
        w.resolve(entry);
      }
    }
  };
  return {
    entries,
    at: (level) => entries.filter((e) => e.level === level),
    waitFor(match) {
      const found = entries.find(match);
      return found ? Promise.resolve(found) : new Promise((resolve) => waiters.add({ match, resolve }));
    },
    debug: write('debug'),
    info: write('info'),
    warn: write('warn'),
    error: write('error'),
  };
}
