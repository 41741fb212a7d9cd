// What the gateway's and the runner's configuration share: the variable helpers, the variables both
// read with one meaning, and the parse that fails fast with every problem listed. Each process's own
// variables live beside it (gateway/config.ts, runner/config.ts); nothing else reads process.env.
import { z } from 'zod';
import type { TelemetryConfig } from '../telemetry/index.ts';
import { pemProblem } from './tls.ts';

/** An integer variable with a default and bounds. */
export const envInt = (def: number, min: number, max: number) => z.coerce.number().int().min(min).max(max).default(def);

/** An optional URL variable with one of the given protocols. */
export const envUrl = (protocols: RegExp) =>
  z
    .string()
    .trim()
    .optional()
    .refine((v) => v === undefined || (URL.canParse(v) && protocols.test(new URL(v).protocol)), 'must be a valid URL');

/** Optional PEM text of CA certificates (a secret's payload, newlines included), checked at start. */
export const envPem = () =>
  z
    .string()
    .optional()
    .superRefine((v, ctx) => {
      const problem = v === undefined ? null : pemProblem(v);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    });

/**
 * Variables that the gateway and the runner both read, with one meaning: where local data goes,
 * the broker and its names, image storage, logging.
 */
export const sharedEnv = {
  DATA_DIR: z.string().trim().min(1).default('./data'),
  AMQP_URL: envUrl(/^amqps?:$/),
  AMQP_CA_CERT: envPem(),
  AMQP_CONNECT_TIMEOUT_MS: envInt(10_000, 100, 120_000),
  AMQP_PREFIX: z.string().regex(/^[a-zA-Z0-9_.-]{1,100}$/, 'letters, digits, _ . - only').default('itemgen'),
  QUEUE_DELIVERY_LIMIT: envInt(5, 1, 100),
  GCS_BUCKET: z.string().regex(/^[a-z0-9][a-z0-9._-]{1,221}[a-z0-9]$/, 'must be a valid bucket name').optional(),
  GCS_SIGNED_URL_SECONDS: envInt(3600, 60, 604_800),
  GCS_PUBLIC: z.enum(['true', 'false']).default('false'),
  LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
  // Prompts are the users' words: in logs only when the operator asks for them.
  LOG_PROMPTS: z.enum(['true', 'false']).default('false'),
  // Cloud Logging joins a log line to its trace by `projects/<project>/traces/<id>`.
  GOOGLE_CLOUD_PROJECT: z.string().regex(/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/, 'must be a project id').optional(),
  // Traces: the OpenTelemetry SDK's standard variables (src/telemetry/), read here like every other.
  OTEL_SDK_DISABLED: z.enum(['true', 'false']).default('false'),
  OTEL_TRACES_EXPORTER: z.enum(['otlp', 'gcp', 'none']).optional(),
  OTEL_EXPORTER_OTLP_ENDPOINT: envUrl(/^https?:$/),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: envUrl(/^https?:$/),
  OTEL_EXPORTER_OTLP_PROTOCOL: z.enum(['http/protobuf', 'http/json']).default('http/protobuf'),
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: z.enum(['http/protobuf', 'http/json']).optional(),
  OTEL_EXPORTER_OTLP_HEADERS: otelPairs(),
  OTEL_EXPORTER_OTLP_TRACES_HEADERS: otelPairs(),
  OTEL_TRACES_SAMPLER: z
    .enum(['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'])
    .default('parentbased_always_on'),
  OTEL_TRACES_SAMPLER_ARG: z.coerce.number().min(0).max(1).default(1),
  OTEL_SERVICE_NAME: z.string().trim().min(1).optional(),
  OTEL_RESOURCE_ATTRIBUTES: otelPairs(),
};

/** `key=value,key2=value2` with percent-encoded values (the OTEL_*_HEADERS and OTEL_RESOURCE_ATTRIBUTES form). */
function otelPairs() {
  return z
    .string()
    .optional()
    .transform((v, ctx) => {
      const pairs: Record<string, string> = {};
      for (const item of (v ?? '').split(',').filter((i) => i.trim() !== '')) {
        const at = item.indexOf('=');
        if (at <= 0) {
          ctx.addIssue({ code: 'custom', message: 'must be key=value pairs separated by commas' });
          return z.NEVER;
        }
        try {
          pairs[item.slice(0, at).trim()] = decodeURIComponent(item.slice(at + 1).trim());
        } catch {
          ctx.addIssue({ code: 'custom', message: 'a value is not valid percent-encoding' });
          return z.NEVER;
        }
      }
      return pairs;
    });
}

type SharedEnv = z.infer<z.ZodObject<typeof sharedEnv>>;

/**
 * Where traces go, from the standard variables: on when OTEL_TRACES_EXPORTER names an exporter, or
 * when it is unset and an OTLP endpoint is given; off otherwise and with OTEL_SDK_DISABLED=true.
 */
export function telemetryConfig(e: SharedEnv): TelemetryConfig {
  const endpoint = e.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? e.OTEL_EXPORTER_OTLP_ENDPOINT;
  const chosen = e.OTEL_TRACES_EXPORTER ?? (endpoint ? 'otlp' : 'none');
  const exporter = e.OTEL_SDK_DISABLED === 'true' || chosen === 'none' ? null : chosen;
  return {
    exporter,
    otlp: {
      // The signal's own endpoint is used as it is; the base endpoint gets the traces path (the spec's rule).
      url: e.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? `${(e.OTEL_EXPORTER_OTLP_ENDPOINT ?? 'http://localhost:4318').replace(/\/+$/, '')}/v1/traces`,
      protocol: e.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? e.OTEL_EXPORTER_OTLP_PROTOCOL,
      headers: { ...e.OTEL_EXPORTER_OTLP_HEADERS, ...e.OTEL_EXPORTER_OTLP_TRACES_HEADERS },
    },
    sampler: e.OTEL_TRACES_SAMPLER,
    samplerRatio: e.OTEL_TRACES_SAMPLER_ARG,
    serviceName: e.OTEL_SERVICE_NAME,
    resourceAttributes: e.OTEL_RESOURCE_ATTRIBUTES,
    project: e.GOOGLE_CLOUD_PROJECT,
  };
}

/** How log lines are written (src/core/log.ts). */
export const logFormat = (e: SharedEnv) => ({ project: e.GOOGLE_CLOUD_PROJECT, prompts: e.LOG_PROMPTS === 'true' });

/**
 * Reads the schema's variables from `env` (an empty value counts as unset) and validates them all,
 * failing with every problem listed.
 */
export function parseEnv<S extends z.ZodRawShape>(shape: S, env: Record<string, string | undefined>): z.infer<z.ZodObject<S>> {
  const schema = z.object(shape);
  const relevant = Object.fromEntries(Object.keys(shape).map((k) => [k, env[k] === '' ? undefined : env[k]]));
  const parsed = schema.safeParse(relevant);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  return parsed.data;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Variables that mean something only with another one; ConfigError naming each one set alone. */
export function requireCompanions(pairs: [string, unknown, string, unknown][]): void {
  const lines = pairs.filter(([, v, , needed]) => v !== undefined && needed === undefined).map(([name, , needs]) => `  ${name}: needs ${needs}`);
  if (lines.length) throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
}

/** AMQP_CA_CERT means something only for a TLS broker URL (shared with the runner). */
export const amqpCaCompanion = (e: { AMQP_CA_CERT?: string | undefined; AMQP_URL?: string | undefined }): [string, unknown, string, unknown] => [
  'AMQP_CA_CERT',
  e.AMQP_CA_CERT,
  'an amqps:// AMQP_URL',
  /^amqps:/i.test(e.AMQP_URL ?? '') ? e.AMQP_URL : undefined,
];
