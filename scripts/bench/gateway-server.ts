// The gateway under test, as a child process of scripts/bench/gateway.ts: configured from the
// environment exactly like the real entry point, it prints `listening <url>` on stdout once it
// accepts connections and shuts down cleanly on SIGTERM/SIGINT or when its parent goes away.
// A process of its own so the gateway has an event loop (and a core) the load generator does not share.
import { parseConfig } from '../../src/gateway/config.ts';
import { startGateway } from '../../src/gateway/service.ts';

const gateway = await startGateway(parseConfig(process.env));
process.stdout.write(`listening ${gateway.url}\n`);

let closing = false;
const shutdown = async () => {
  if (closing) return;
  closing = true;
  try {
    await gateway.close();
  } finally {
    process.exit(0);
  }
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
// The bench holds our stdin open; EOF means it died without signalling us, so do not linger.
process.stdin.on('end', shutdown).resume();
