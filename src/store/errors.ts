// Failures of the database connection, as opposed to a statement the database refused: the
// PostgreSQL driver's connection errors, the server's connection and shutdown states, and a
// statement that got no answer in time all become one error class the HTTP layer answers with 503.
import { isCertificateError } from '../core/tls.ts';

export class DatabaseUnavailableError extends Error {
  override name = 'DatabaseUnavailableError';
  constructor(
    message: string,
    /** Whether the statement may have taken effect: it was sent, and no answer came. */
    readonly outcome: 'not_applied' | 'unknown',
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** The statement never reached the server. */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'CONNECT_TIMEOUT', '57P03', '53300']);
/** The connection broke or the server gave up, possibly after the statement ran. */
const BROKEN = new Set([
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  // query_canceled: our deadline or the server's statement_timeout.
  '57014',
  '57P01',
  '57P02',
]);

/** The error as a DatabaseUnavailableError when it is about the connection; otherwise as it is. */
export function classifyDatabaseError(err: unknown): unknown {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return err;
  const message = `database unavailable: ${(err as Error).message}`;
  // The handshake failed before any statement went out; no retry mends it, the configuration must.
  if (isCertificateError(err)) {
    return new DatabaseUnavailableError(
      `database unavailable: the server's TLS certificate was refused (DATABASE_CA_CERT, DATABASE_TLS_SERVER_NAME): ${(err as Error).message}`,
      'not_applied',
      { cause: err },
    );
  }
  if (NOT_SENT.has(code)) return new DatabaseUnavailableError(message, 'not_applied', { cause: err });
  // SQLSTATE class 08: connection exceptions.
  if (BROKEN.has(code) || code.startsWith('08')) return new DatabaseUnavailableError(message, 'unknown', { cause: err });
  return err;
}
