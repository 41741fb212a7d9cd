// What the OTEL_* variables configure (parsed by src/core/config.ts telemetryConfig): shared by
// the entry point (index.ts) and the SDK it loads (sdk.ts), so neither imports the other back.
export type TraceSampler = 'always_on' | 'always_off' | 'traceidratio' | 'parentbased_always_on' | 'parentbased_always_off' | 'parentbased_traceidratio';

/** What the OTEL_* variables say (src/core/config.ts telemetryConfig). */
export interface TelemetryConfig {
  /** null: traces off, nothing loaded. `gcp` is Google Cloud Trace's exporter. */
  exporter: 'otlp' | 'gcp' | null;
  otlp: { url: string; protocol: 'http/protobuf' | 'http/json'; headers: Record<string, string> };
  sampler: TraceSampler;
  /** OTEL_TRACES_SAMPLER_ARG: the ratio of the ratio samplers. */
  samplerRatio: number;
  serviceName: string | undefined;
  resourceAttributes: Record<string, string>;
  /** GOOGLE_CLOUD_PROJECT: where Cloud Trace's exporter writes (else the one its credentials name). */
  project: string | undefined;
}
