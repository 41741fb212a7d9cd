// The whole product in one process (docs/architecture.md, decision 5): the gateway and a runner that
// consumes the gateway's own queue and stores images where the gateway serves them. Without
// MODEL_DIR the runner generates the tiny model (images are noise) and says so.
import type { Config } from './gateway/config.ts';
import { startGateway, type Gateway, type GatewayOverrides } from './gateway/service.ts';
import { parseRunnerConfig } from './runner/config.ts';
import { startRunner, type Runner } from './runner/service.ts';

export interface Product {
  gateway: Gateway;
  runner: Runner;
  close(): Promise<void>;
}

/** `env` supplies the runner's own variables (MODEL_DIR, EXECUTION_PROVIDER, …). */
export async function startProduct(
  config: Config,
  env: Record<string, string | undefined>,
  overrides: GatewayOverrides = {},
): Promise<Product> {
  const gateway = await startGateway(config, overrides);
  try {
    const runnerConfig = parseRunnerConfig({
      ...env,
      GATEWAY_URL: gateway.url,
      RUNNER_TOKEN: gateway.settings.runnerToken,
      DATA_DIR: config.dataDir,
      RUNNER_HEALTH_HOST: '127.0.0.1',
      RUNNER_HEALTH_PORT: env.RUNNER_HEALTH_PORT ?? '0',
    });
    const runner = await startRunner(runnerConfig, { queue: gateway.queue, store: gateway.images, ...(overrides.log ? { log: overrides.log } : {}) });
    return {
      gateway,
      runner,
      async close() {
        await runner.close();
        await gateway.close();
      },
    };
  } catch (err) {
    await gateway.close();
    throw err;
  }
}
