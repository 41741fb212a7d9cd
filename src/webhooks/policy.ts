// Where webhooks may be sent (SSRF): a URL is refused unless it is https and every address its host
// resolves to is public unicast, or in an allow-listed range. Checked at submit and again at
// connect time (the `lookup` the request connects through), so a name that resolves to a public
// address at submit and to 127.0.0.1 later (DNS rebinding) is refused where it matters.
// A gateway listening on loopback (the embedded mode, this machine only) may call http and
// loopback targets: its receivers are on the same machine.
import dns from 'node:dns';
import type { LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';

export type ResolvedAddress = { address: string; family: 4 | 6 };
/** Every address of a host name (tests inject their own to simulate rebinding). */
export type Resolver = (hostname: string) => Promise<ResolvedAddress[]>;

export const systemResolver: Resolver = async (hostname) =>
  (await dns.promises.lookup(hostname, { all: true, verbatim: true })).map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));

export interface TargetPolicy {
  /** The gateway listens on loopback: http and loopback addresses are allowed too. */
  allowLoopback: boolean;
  /** Ranges allowed although not public (WEBHOOK_ALLOW_PRIVATE). */
  allowPrivate: [ipaddr.IPv4 | ipaddr.IPv6, number][];
  resolve: Resolver;
}

/** Names of cloud metadata services, refused whatever they resolve to. */
const METADATA_NAMES = new Set(['metadata', 'metadata.google.internal', 'metadata.goog', 'instance-data', 'instance-data.ec2.internal']);

/** A webhook target refused by the policy; `message` says why, for the client or the delivery record. */
export class TargetRefused extends Error {
  override name = 'TargetRefused';
}

/** Parses WEBHOOK_ALLOW_PRIVATE: comma-separated CIDRs (a bare address is its /32 or /128). */
export function parseAllowList(value: string | undefined): [ipaddr.IPv4 | ipaddr.IPv6, number][] {
  return (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => {
      if (ipaddr.isValidCIDR(s)) return ipaddr.parseCIDR(s);
      if (ipaddr.isValid(s)) {
        const a = ipaddr.parse(s);
        return [a, a.kind() === 'ipv4' ? 32 : 128] as [ipaddr.IPv4 | ipaddr.IPv6, number];
      }
      throw new Error(`not a CIDR: ${s}`);
    });
}

/** Why `address` may not be called, or null when it may. IPv4-mapped IPv6 is judged as its IPv4. */
export function addressRefusal(address: string, policy: Pick<TargetPolicy, 'allowLoopback' | 'allowPrivate'>): string | null {
  if (!ipaddr.isValid(address)) return `${address} is not an IP address`;
  const parsed = ipaddr.process(address.replace(/%.*$/, ''));
  const range = parsed.range();
  if (range === 'unicast') return null;
  if (range === 'loopback' && policy.allowLoopback) return null;
  for (const cidr of policy.allowPrivate) {
    if (cidr[0].kind() === parsed.kind() && parsed.match(cidr)) return null;
  }
  return `${parsed.toString()} is a ${range} address`;
}

/** The URL checks that need no DNS: scheme, credentials, metadata names, literal addresses. */
export function urlRefusal(raw: string, policy: Pick<TargetPolicy, 'allowLoopback' | 'allowPrivate'>): string | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'is not a URL';
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && policy.allowLoopback)) {
    return policy.allowLoopback ? 'must be an http or https URL' : 'must be an https URL';
  }
  if (url.username || url.password) return 'must not carry credentials';
  const host = url.hostname.replace(/^\[|\]$/g, '').replace(/\.$/, '').toLowerCase();
  if (METADATA_NAMES.has(host)) return `${host} is a metadata service`;
  if (ipaddr.isValid(host)) {
    const why = addressRefusal(host, policy);
    return why ? `${why}, not allowed as a webhook target` : null;
  }
  return null;
}

/** Checks `raw` and every address its host resolves to; throws TargetRefused saying why. */
export async function checkTarget(raw: string, policy: TargetPolicy): Promise<void> {
  const why = urlRefusal(raw, policy);
  if (why) throw new TargetRefused(why);
  const host = new URL(raw).hostname.replace(/^\[|\]$/g, '');
  if (ipaddr.isValid(host)) return;
  const addresses = await resolveAll(host, policy.resolve);
  refuseAny(host, addresses, policy);
}

/** A name that takes longer to resolve is refused (a submit must not hang on a slow resolver). */
export const RESOLVE_TIMEOUT_MS = 5000;

async function resolveAll(host: string, resolve: Resolver): Promise<ResolvedAddress[]> {
  let addresses: ResolvedAddress[];
  let timer: NodeJS.Timeout | undefined;
  try {
    addresses = await Promise.race([
      resolve(host),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(Object.assign(new Error('timeout'), { code: `no answer within ${RESOLVE_TIMEOUT_MS} ms` })), RESOLVE_TIMEOUT_MS);
      }),
    ]);
  } catch (err) {
    throw new TargetRefused(`${host} does not resolve (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  } finally {
    clearTimeout(timer);
  }
  if (addresses.length === 0) throw new TargetRefused(`${host} does not resolve`);
  return addresses;
}

function refuseAny(host: string, addresses: ResolvedAddress[], policy: TargetPolicy): void {
  for (const a of addresses) {
    const why = addressRefusal(a.address, policy);
    if (why) throw new TargetRefused(`${host} resolves to ${why}, not allowed as a webhook target`);
  }
}

/**
 * The `lookup` option for node:http(s) requests: resolves through the policy's resolver and fails
 * the connection when any address is refused, so the address connected to is one just checked.
 */
export function guardedLookup(policy: TargetPolicy): LookupFunction {
  return ((hostname: string, options: dns.LookupOptions, callback: (...args: unknown[]) => void) => {
    resolveAll(hostname, policy.resolve)
      .then((addresses) => {
        refuseAny(hostname, addresses, policy);
        const wanted = options.family === 4 || options.family === 6 ? addresses.filter((a) => a.family === options.family) : addresses;
        if (wanted.length === 0) throw new TargetRefused(`${hostname} has no IPv${options.family} address`);
        if (options.all) callback(null, wanted);
        else callback(null, wanted[0]!.address, wanted[0]!.family);
      })
      .catch((err: unknown) => callback(err));
  }) as LookupFunction;
}
