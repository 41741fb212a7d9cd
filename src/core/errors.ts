// Errors with a stable machine code and a human message; the gateway maps them to
// application/problem+json (src/gateway/problem.ts).
export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'AppError';
  }
}

export const notFound = (what = 'generation') => new AppError(404, 'not_found', `No ${what} with this id.`);
