// The SDK's one error type: an answer of the API as its problem+json document (RFC 9457), or a
// failure on the client's side (status 0: no answer, a wait that timed out, an aborted call).
export interface FieldIssue {
  /** The request field, dotted ("width", "num_inference_steps"); '' for the whole body. */
  path: string;
  message: string;
}

export interface Problem {
  type?: string;
  title?: string;
  status: number;
  code: string;
  detail: string;
  [extra: string]: unknown;
}

export class ItemgenError extends Error {
  override readonly name = 'ItemgenError';
  /** The HTTP status; 0 when no answer came (network, timeout, abort). */
  readonly status: number;
  /** The problem's stable machine code (`validation_failed`, `not_found`, …; client-side: `network_error`, `wait_timeout`, `aborted`). */
  readonly code: string;
  readonly detail: string;
  /** Per-field issues of a 422 (empty otherwise). */
  readonly fields: FieldIssue[];
  readonly problem: Problem;

  constructor(problem: Problem, options?: { cause?: unknown }) {
    super(problem.detail, options);
    this.problem = problem;
    this.status = problem.status;
    this.code = problem.code;
    this.detail = problem.detail;
    const errors = Array.isArray(problem.errors) ? problem.errors : [];
    this.fields = errors.filter(
      (e): e is FieldIssue => typeof e === 'object' && e !== null && typeof e.path === 'string' && typeof e.message === 'string',
    );
  }

  /** The problem of a non-2xx response (a body that is not problem+json becomes one). */
  static async fromResponse(res: Response): Promise<ItemgenError> {
    const text = await res.text().catch(() => '');
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    const p = body && typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>) : {};
    return new ItemgenError({
      ...p,
      status: res.status,
      code: typeof p.code === 'string' ? p.code : `http_${res.status}`,
      detail: typeof p.detail === 'string' ? p.detail : `HTTP ${res.status}${text ? `: ${text.slice(0, 200)}` : ''}`,
    });
  }

  static client(code: string, detail: string, cause?: unknown): ItemgenError {
    return new ItemgenError({ status: 0, code, detail }, cause === undefined ? undefined : { cause });
  }
}
