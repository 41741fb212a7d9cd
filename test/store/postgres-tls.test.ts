// PostgreSQL over TLS as Cloud SQL serves it (DATABASE_CA_CERT, DATABASE_TLS_SERVER_NAME) and the
// password apart from the URL (DATABASE_PASSWORD): against the real test server behind a proxy that
// terminates TLS, with certificates made by openssl for this run.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { runKeysCli } from '../../src/gateway/keys-cli.ts';
import { DatabaseUnavailableError } from '../../src/store/errors.ts';
import { openPostgres, type PostgresOptions } from '../../src/store/postgres.ts';
import { startTestGateway } from '../helpers/gateway.ts';
import { hasOpenssl, makeCertificates, startTlsProxy, type Certificates, type TlsProxy } from '../helpers/tls.ts';

// Cloud SQL's per-instance CA: the server certificate names the instance, not an address.
const INSTANCE = 'itemgen-test:instance-1';

const it = suite<{ certs: Certificates; cloudSql: TlsProxy; byAddress: TlsProxy; withPassword: TlsProxy }>('PostgreSQL over TLS');

it.before(async (ctx) => {
  assert.ok(hasOpenssl(), 'these tests make their certificates with the openssl CLI, which is not on PATH');
  ctx.certs = await makeCertificates({ instance: { cn: INSTANCE }, address: { cn: 'db', san: 'IP:127.0.0.1' } });
  const { instance, address } = ctx.certs.server;
  ctx.cloudSql = await startTlsProxy({ ...instance!, targetPort: 5432, postgres: {} });
  ctx.byAddress = await startTlsProxy({ ...address!, targetPort: 5432, postgres: {} });
  ctx.withPassword = await startTlsProxy({ ...instance!, targetPort: 5432, postgres: { requirePassword: 'from-DATABASE_PASSWORD' } });
});

it.after(async ({ certs, cloudSql, byAddress, withPassword }) => {
  await Promise.all([cloudSql?.close(), byAddress?.close(), withPassword?.close()]);
  await certs?.remove();
});

const urlOf = (proxy: TlsProxy, password = '') => `postgres://postgres${password ? `:${password}` : ''}@127.0.0.1:${proxy.port}/test`;

/** Opens, runs one statement, closes: the statement's answer or its error. */
async function selectOne(o: Omit<PostgresOptions, 'poolSize'>): Promise<unknown> {
  const db = await openPostgres({ poolSize: 1, connectTimeoutMs: 2000, queryTimeoutMs: 2000, ...o });
  try {
    return (await db.query('SELECT 1 AS one'))[0]!.one;
  } catch (err) {
    return err;
  } finally {
    await db.close();
  }
}

it('the right CA and the instance name: connects and queries, over TLS', async ({ certs, cloudSql }) => {
  const before = cloudSql.sessions;
  assert.is(await selectOne({ url: urlOf(cloudSql), tls: { ca: certs.ca, serverName: INSTANCE } }), 1);
  assert.ok(cloudSql.sessions > before, 'through a TLS session');
});

it('a CA that did not sign the server certificate: refused, saying the certificate was', async ({ certs, cloudSql }) => {
  const err = await selectOne({ url: urlOf(cloudSql), tls: { ca: certs.otherCa, serverName: INSTANCE } });
  assert.instance(err, DatabaseUnavailableError);
  assert.match((err as Error).message, /TLS certificate was refused \(DATABASE_CA_CERT, DATABASE_TLS_SERVER_NAME\)/);
  assert.is((err as DatabaseUnavailableError).outcome, 'not_applied');
});

it('the right CA but another name: refused, naming both', async ({ certs, cloudSql }) => {
  const err = await selectOne({ url: urlOf(cloudSql), tls: { ca: certs.ca, serverName: 'itemgen-test:instance-2' } });
  assert.instance(err, DatabaseUnavailableError);
  assert.match((err as Error).message, /certificate is for itemgen-test:instance-1, not itemgen-test:instance-2 \(DATABASE_TLS_SERVER_NAME\)/);
});

it('without a server name the URL host is verified: an instance certificate is refused for 127.0.0.1, one with its IP SAN accepted', async ({ certs, cloudSql, byAddress }) => {
  const err = await selectOne({ url: urlOf(cloudSql), tls: { ca: certs.ca } });
  assert.instance(err, DatabaseUnavailableError);
  assert.match((err as Error).message, /TLS certificate was refused.*127\.0\.0\.1/);
  assert.is(await selectOne({ url: urlOf(byAddress), tls: { ca: certs.ca } }), 1);
});

it('sslmode=disable in the URL does not turn TLS off once a CA is configured', async ({ certs, cloudSql }) => {
  assert.is(await selectOne({ url: `${urlOf(cloudSql)}?sslmode=disable`, tls: { ca: certs.ca, serverName: INSTANCE } }), 1);
});

it('DATABASE_PASSWORD is the password sent, not the URL\'s (the proxy asks for it: the test server trusts loopback)', async ({ certs, withPassword }) => {
  const tlsOptions = { ca: certs.ca, serverName: INSTANCE };
  assert.is(await selectOne({ url: urlOf(withPassword, 'stale-in-url'), password: 'from-DATABASE_PASSWORD', tls: tlsOptions }), 1);
  const refused = await selectOne({ url: urlOf(withPassword, 'stale-in-url'), tls: tlsOptions });
  assert.match(String((refused as Error).message), /password authentication failed/);
  assert.equal(withPassword.passwords.slice(-2), ['from-DATABASE_PASSWORD', 'stale-in-url']);
});

it('the gateway and npm run keys reach the database the same way, from the configuration', async ({ certs, withPassword }) => {
  const env = {
    DATABASE_URL: urlOf(withPassword),
    DATABASE_PASSWORD: 'from-DATABASE_PASSWORD',
    DATABASE_CA_CERT: certs.ca,
    DATABASE_TLS_SERVER_NAME: INSTANCE,
  };
  const t = await startTestGateway({ store: 'postgres', env });
  try {
    const sessions = withPassword.sessions;
    // The CLI on the gateway's schema (a URL parameter the driver passes on as a setting).
    const lines: string[] = [];
    const code = await runKeysCli(['create', '--name', 'over tls'], (l) => lines.push(l), { ...env, DATABASE_URL: `${env.DATABASE_URL}?search_path=${t.schema}` });
    assert.is(code, 0, lines.join('\n'));
    assert.ok(withPassword.sessions > sessions, 'the CLI came through TLS');
    assert.is((await t.call('POST', '/v1/generations', { key: lines[0]!, body: { prompt: 'a lantern' } })).status, 202);
  } finally {
    await t.stop();
  }
});

it.run();
