// One JSON line per event on stderr, in Cloud Logging's structured form: `severity`, `message`,
// `time`, the active span's trace and span ids (so Cloud Logging shows a line under its trace), and
// `httpRequest` for access logs. Secrets never reach a line (fields named like credentials are
// redacted, at any depth), nor prompts unless LOG_PROMPTS says so.
import { activeSpanIds } from '../telemetry/index.ts';

type Level = 'debug' | 'info' | 'warn' | 'error';
const ORDER = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 } as const;
/** Cloud Logging's LogSeverity names. */
const SEVERITY = { debug: 'DEBUG', info: 'INFO', warn: 'WARNING', error: 'ERROR' } as const;

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export interface LogFormat {
  /** GOOGLE_CLOUD_PROJECT: trace ids are written as Cloud Logging's `projects/<project>/traces/<id>`. */
  project?: string | undefined;
  /** LOG_PROMPTS: prompt text is written; otherwise it is left out. */
  prompts?: boolean;
}

const SECRET = /authorization|cookie|token|secret|password|passwd|api[_-]?key|credential|signature/i;
/** Fields that carry a user's prompt (a job message's body carries one too). */
const PROMPT = /^(prompt|negative_prompt|prompts|body)$/i;
const REDACTED = '[redacted]';
/** The entry's own keys: a field of the same name is written beside them, never over them. */
const RESERVED = new Set(['time', 'severity', 'component', 'message']);

export function createLogger(level: keyof typeof ORDER = 'info', component = 'itemgen', format: LogFormat = {}): Logger {
  const clean = (key: string, v: unknown, depth: number): unknown => {
    if (SECRET.test(key)) return REDACTED;
    if (!format.prompts && PROMPT.test(key)) return '[omitted: LOG_PROMPTS]';
    if (v instanceof Error) return v.message;
    if (depth < 4 && v !== null && typeof v === 'object' && !Array.isArray(v) && !Buffer.isBuffer(v)) {
      return Object.fromEntries(Object.entries(v).map(([k, inner]) => [k, clean(k, inner, depth + 1)]));
    }
    return v;
  };
  const write = (lvl: Level) => (message: string, fields: Record<string, unknown> = {}) => {
    if (ORDER[lvl] < ORDER[level]) return;
    const entry: Record<string, unknown> = { time: new Date().toISOString(), severity: SEVERITY[lvl], component, message };
    const span = activeSpanIds();
    if (span) {
      entry['logging.googleapis.com/trace'] = format.project ? `projects/${format.project}/traces/${span.traceId}` : span.traceId;
      entry['logging.googleapis.com/spanId'] = span.spanId;
      entry['logging.googleapis.com/trace_sampled'] = span.sampled;
    }
    for (const [k, v] of Object.entries(fields)) entry[RESERVED.has(k) || k.startsWith('logging.googleapis.com/') ? `${k}_field` : k] = clean(k, v, 0);
    process.stderr.write(`${JSON.stringify(entry)}\n`);
  };
  return { debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error') };
}
