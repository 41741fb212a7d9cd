// TLS to the services the gateway leaves its host for (PostgreSQL, RabbitMQ): the CA certificates
// an operator configures, checked at start, and the check of the name a server's certificate
// carries. Cloud SQL's per-instance CA issues server certificates whose name is
// `<project>:<instance>` (in the CN, no IP SAN), not the private address clients connect to.
import { X509Certificate } from 'node:crypto';
import net from 'node:net';
import tls, { type PeerCertificate } from 'node:tls';

/** Longest PEM text accepted (a bundle of a few dozen certificates). */
export const MAX_PEM_CHARS = 65_536;

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+?-----END CERTIFICATE-----/g;

/**
 * Problems of PEM text meant as the CA certificates a server is verified against: none when it
 * holds one or more readable certificates, none expired, and nothing else.
 */
export function pemProblem(pem: string, now = new Date()): string | null {
  if (pem.length > MAX_PEM_CHARS) return `at most ${MAX_PEM_CHARS} characters of PEM`;
  const blocks = pem.match(PEM_BLOCK) ?? [];
  if (blocks.length === 0) return 'must be PEM text with at least one "-----BEGIN CERTIFICATE-----" block';
  if (pem.replace(PEM_BLOCK, '').trim() !== '') return 'holds text besides PEM certificate blocks';
  for (const [i, block] of blocks.entries()) {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(block);
    } catch {
      return `certificate ${i + 1} is not a readable X.509 certificate`;
    }
    if (new Date(cert.validTo) < now) return `certificate ${i + 1} (${cert.subject.replace(/\n/g, ', ')}) expired ${cert.validTo}`;
  }
  return null;
}

/** The names a certificate is for: its DNS and IP subject alternative names and its CN. */
function certificateNames(cert: PeerCertificate): string[] {
  const sans = (cert.subjectaltname ?? '')
    .split(', ')
    .filter((s) => s.startsWith('DNS:') || s.startsWith('IP Address:'))
    .map((s) => s.slice(s.indexOf(':') + 1));
  const cn = cert.subject?.CN;
  return [...sans, ...(Array.isArray(cn) ? cn : cn ? [cn] : [])];
}

/**
 * A checkServerIdentity for tls.connect: the certificate must be for `expected` — the configured
 * server name, matched exactly against its CN or a DNS name (or by Node's rules, wildcards
 * included, when it is a host name) — or, without one, for `host` by Node's own rules.
 */
export function serverIdentityCheck(host: string, expected: string | undefined, setting: string) {
  return (_servername: string, cert: PeerCertificate): Error | undefined => {
    if (expected === undefined) return tls.checkServerIdentity(host, cert);
    const names = certificateNames(cert);
    if (names.some((n) => n.toLowerCase() === expected.toLowerCase())) return undefined;
    if (!net.isIP(expected) && tls.checkServerIdentity(expected, cert) === undefined) return undefined;
    return Object.assign(
      new Error(`the server's certificate is for ${names.join(', ') || 'no name'}, not ${expected} (${setting})`),
      { code: 'ERR_TLS_CERT_ALTNAME_INVALID' },
    );
  };
}

/** Node's and OpenSSL's codes for a server certificate that does not verify (chain or name). */
export function isCertificateError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('ERR_TLS_') || /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER/.test(code));
}
