// The runner's configuration: its own variables, and the ones it shares with the gateway parsed by
// the same definitions (src/core/config.ts sharedEnv), so both processes accept and refuse alike.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigError } from '../../src/core/config.ts';
import { parseConfig } from '../../src/gateway/config.ts';
import { parseRunnerConfig } from '../../src/runner/config.ts';

const TOKEN = 'runner-token-0123456789';

test('defaults: local gateway, auto execution provider, health on 8081; an empty value counts as unset', () => {
  const c = parseRunnerConfig({ RUNNER_TOKEN: TOKEN, AMQP_URL: '', GCS_BUCKET: '' });
  assert.is(c.gatewayUrl, 'http://127.0.0.1:8080');
  assert.is(c.executionProvider, 'auto');
  assert.is(c.healthPort, 8081);
  assert.is(c.amqpUrl, undefined);
  assert.is(c.gcsBucket, undefined);
  assert.is(c.amqpPrefix, 'itemgen');
});

test('every problem is listed at once, the missing token with what it must be', () => {
  try {
    parseRunnerConfig({ GATEWAY_URL: 'ftp://x', RUNNER_PREFETCH: '0', LOG_LEVEL: 'loud' });
    assert.unreachable('accepted a bad configuration');
  } catch (err) {
    assert.instance(err, ConfigError);
    const message = (err as Error).message;
    for (const name of ['RUNNER_TOKEN', 'GATEWAY_URL', 'RUNNER_PREFETCH', 'LOG_LEVEL']) assert.match(message, name);
    assert.match(message, /same token as the gateway/);
  }
});

test('a shared variable is refused by the runner exactly as by the gateway', () => {
  for (const [name, value] of [
    ['AMQP_URL', 'http://mq:5672'],
    ['AMQP_PREFIX', 'bad prefix!'],
    ['QUEUE_DELIVERY_LIMIT', '0'],
    ['GCS_BUCKET', 'Not_A_Bucket'],
    ['GCS_PUBLIC', 'yes'],
  ] as const) {
    const messages = [() => parseConfig({ [name]: value }), () => parseRunnerConfig({ RUNNER_TOKEN: TOKEN, [name]: value })].map((parse) => {
      try {
        parse();
        return 'accepted';
      } catch (err) {
        return (err as Error).message;
      }
    });
    assert.match(messages[0]!, name);
    assert.is(messages[1], messages[0], `${name}: the two processes disagree`);
  }
});

test.run();
