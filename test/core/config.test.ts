import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigError, parseConfig } from '../../src/core/config.ts';

test('an empty environment gives the embedded defaults', () => {
  const c = parseConfig({});
  assert.is(c.host, '127.0.0.1');
  assert.is(c.port, 8080);
  assert.ok(c.loopback);
  assert.is(c.databaseUrl, undefined);
  assert.is(c.amqpUrl, undefined);
  assert.ok(c.dataDir.endsWith('/data'));
});

test('values are parsed and loopback recognized', () => {
  const c = parseConfig({
    HOST: '0.0.0.0',
    PORT: '9000',
    DATABASE_URL: 'postgres://u@db:5432/x',
    AMQP_URL: 'amqp://guest:guest@mq:5672',
    PUBLIC_URL: 'https://items.example.com/',
  });
  assert.is(c.port, 9000);
  assert.not.ok(c.loopback);
  assert.is(c.publicUrl, 'https://items.example.com');
  assert.ok(parseConfig({ HOST: '::1' }).loopback);
  assert.ok(parseConfig({ HOST: '127.0.0.2' }).loopback);
});

test('invalid configuration fails fast, naming every bad variable', () => {
  try {
    parseConfig({ PORT: 'eighty', DATABASE_URL: 'mysql://x', AMQP_URL: 'http://mq', RUNNER_TOKEN: 'short' });
    assert.unreachable('should have thrown');
  } catch (err) {
    assert.instance(err, ConfigError);
    const message = (err as Error).message;
    for (const name of ['PORT', 'DATABASE_URL', 'AMQP_URL', 'RUNNER_TOKEN']) assert.match(message, name);
  }
});

test.run();
