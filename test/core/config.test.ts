import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigError } from '../../src/core/config.ts';
import { parseConfig } from '../../src/gateway/config.ts';
import { hasOpenssl, makeCertificates } from '../helpers/tls.ts';

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

/** The ConfigError's message for `env`, or a failure when it is accepted. */
function refusal(env: Record<string, string>): string {
  try {
    parseConfig(env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.message;
  }
  assert.unreachable(`accepted ${JSON.stringify(env)}`);
  return '';
}

test('database TLS and password: read into the configuration; a CA that is not PEM certificates, or a variable without the one it needs, refused at start', async () => {
  assert.ok(hasOpenssl(), 'needs the openssl CLI');
  const certs = await makeCertificates({});
  try {
    const db = 'postgresql://itemgen@10.1.2.3:5432/itemgen?sslmode=require';
    const c = parseConfig({ DATABASE_URL: db, DATABASE_PASSWORD: 'p@ss word', DATABASE_CA_CERT: certs.ca, DATABASE_TLS_SERVER_NAME: 'my-project:itemgen-db' });
    assert.is(c.databasePassword, 'p@ss word');
    assert.equal(c.databaseTls, { ca: certs.ca, serverName: 'my-project:itemgen-db' });
    assert.equal(parseConfig({ DATABASE_URL: db, DATABASE_CA_CERT: `${certs.ca}${certs.otherCa}` }).databaseTls, { ca: `${certs.ca}${certs.otherCa}`, serverName: undefined }, 'a bundle');
    assert.is(parseConfig({ DATABASE_URL: db }).databaseTls, undefined);

    assert.match(refusal({ DATABASE_URL: db, DATABASE_CA_CERT: 'my-project:itemgen-db' }), /DATABASE_CA_CERT: must be PEM text with at least one "-----BEGIN CERTIFICATE-----" block/);
    assert.match(refusal({ DATABASE_URL: db, DATABASE_CA_CERT: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----' }), /DATABASE_CA_CERT: certificate 1 is not a readable X\.509 certificate/);
    assert.match(refusal({ DATABASE_URL: db, DATABASE_CA_CERT: `${certs.ca}\n-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n` }), /DATABASE_CA_CERT: holds text besides PEM certificate blocks/);
    assert.match(refusal({ DATABASE_URL: db, DATABASE_CA_CERT: 'x'.repeat(70_000) }), /DATABASE_CA_CERT: at most 65536 characters/);
    assert.match(refusal({ AMQP_URL: 'amqps://mq:5671', AMQP_CA_CERT: 'nope' }), /AMQP_CA_CERT: must be PEM text/);
    assert.match(refusal({ DATABASE_URL: db, DATABASE_TLS_SERVER_NAME: 'has space' }), /DATABASE_TLS_SERVER_NAME: a host name or a name like project:instance/);
    assert.match(refusal({ DATABASE_URL: db, DATABASE_PASSWORD: 'x'.repeat(1025) }), /DATABASE_PASSWORD: at most 1024 characters/);

    const alone = refusal({ DATABASE_PASSWORD: 'p', DATABASE_CA_CERT: certs.ca, AMQP_URL: 'amqp://mq:5672', AMQP_CA_CERT: certs.ca });
    assert.match(alone, /DATABASE_PASSWORD: needs DATABASE_URL/);
    assert.match(alone, /DATABASE_CA_CERT: needs DATABASE_URL/);
    assert.match(alone, /AMQP_CA_CERT: needs an amqps:\/\/ AMQP_URL/);
    assert.match(refusal({ DATABASE_URL: db, DATABASE_TLS_SERVER_NAME: 'my-project:itemgen-db' }), /DATABASE_TLS_SERVER_NAME: needs DATABASE_CA_CERT/);
    assert.is(parseConfig({ AMQP_URL: 'amqps://mq:5671', AMQP_CA_CERT: certs.ca }).amqpCaCert, certs.ca);
  } finally {
    await certs.remove();
  }
});

test.run();
