// AMQP over TLS, as the gateway on Cloud Run reaches the broker through the internal load balancer
// (amqps, AMQP_CA_CERT): against the real test broker behind a proxy that terminates TLS, with
// certificates made by openssl for this run. The proxy reaches the broker from loopback, where
// guest may log in.
import net from 'node:net';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeJobMessage } from '../../src/core/message.ts';
import { connectRabbitMq } from '../../src/queue/rabbitmq.ts';
import { startTestGateway } from '../helpers/gateway.ts';
import { recordingLogger } from '../helpers/log.ts';
import { uniqueName } from '../helpers/services.ts';
import { hasOpenssl, makeCertificates, startTlsProxy, type Certificates, type TlsProxy } from '../helpers/tls.ts';

const it = suite<{ certs: Certificates; proxy: TlsProxy }>('RabbitMQ over TLS');

it.before(async (ctx) => {
  assert.ok(hasOpenssl(), 'these tests make their certificates with the openssl CLI, which is not on PATH');
  // As the broker's certificate in the cluster: the load balancer's address and the service's names.
  ctx.certs = await makeCertificates({ broker: { cn: 'rabbitmq', san: 'IP:127.0.0.1,DNS:rabbitmq.itemgen.svc.cluster.local' } });
  ctx.proxy = await startTlsProxy({ ...ctx.certs.server.broker!, targetPort: 5672 });
});

it.after(async ({ certs, proxy }) => {
  await proxy?.close();
  await certs?.remove();
});

/** Fails the test instead of waiting forever for what never comes. */
function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

it('with the CA that signed the broker certificate: the gateway publishes, a consumer receives, over TLS', async ({ certs, proxy }) => {
  const sessions = proxy.sessions;
  const t = await startTestGateway({
    store: 'postgres',
    broker: 'rabbitmq',
    amqpUrl: `amqps://guest:guest@127.0.0.1:${proxy.port}`,
    env: { AMQP_CA_CERT: certs.ca },
  });
  try {
    await within(5000, 'broker connection', new Promise<void>((resolve) => t.gw.queue.onConnected(resolve)));
    assert.ok(proxy.sessions > sessions, 'through a TLS session');
    assert.equal(((await (await t.call('GET', '/readyz')).json()) as { broker: boolean }).broker, true);
    const received = new Promise<string>((resolve) => {
      const consumer = t.gw.queue.consume(
        async (d) => {
          d.ack();
          (await consumer).cancel();
          resolve(decodeJobMessage(d.body).id);
        },
        { prefetch: 1 },
      );
    });
    const { id } = (await (await t.call('POST', '/v1/generations', { body: { prompt: 'a lantern' } })).json()) as { id: string };
    assert.is(await within(5000, 'the published job', received), id);
  } finally {
    await t.stop();
  }
});

for (const [name, url, ca, problem] of [
  ['a CA that did not sign it', '127.0.0.1', 'otherCa', /unable to verify|self-signed|certificate/i],
  ['a host the certificate is not for', 'localhost', 'ca', /localhost.*not in the cert's list|altnames/i],
] as const) {
  it(`with ${name}: refused, logged as a refused certificate, never connected`, async ({ certs, proxy }) => {
    const log = recordingLogger();
    const queue = await connectRabbitMq({
      url: `amqps://guest:guest@${url}:${proxy.port}`,
      caCert: certs[ca],
      prefix: uniqueName('itemgen-tls'),
      deliveryLimit: 5,
      log,
    });
    try {
      const refused = await within(5000, 'a refusal', log.waitFor((e) => e.level === 'error' && /TLS certificate refused/.test(e.msg)));
      assert.match(String((refused.fields.err as Error).message), problem);
      assert.not.ok(queue.isConnected());
    } finally {
      await queue.close();
    }
  });
}

it('a broker address that accepts and never answers the TLS handshake: the attempt times out and is tried again, not held for good', async ({ certs }) => {
  const sockets = new Set<net.Socket>();
  const silent = net.createServer((s) => sockets.add(s.on('error', () => {})));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const log = recordingLogger();
  const queue = await connectRabbitMq({
    url: `amqps://guest:guest@127.0.0.1:${(silent.address() as net.AddressInfo).port}`,
    caCert: certs.ca,
    connectTimeoutMs: 200,
    prefix: uniqueName('itemgen-tls'),
    deliveryLimit: 5,
    log,
  });
  try {
    const retried = await within(5000, 'a timed-out attempt', log.waitFor((e) => e.msg === 'broker reconnect scheduled'));
    assert.match(String((retried.fields.err as Error).message), /ETIMEDOUT/);
    assert.not.ok(queue.isConnected());
  } finally {
    await queue.close();
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => silent.close(resolve));
  }
});

it.run();
