/**
 * Every error hookshadow reports, in one table: a stable code, the HTTP status a
 * server answers with, and the CLI exit code. `specs/errors.md` documents each code
 * (a test keeps the two in step).
 */
export const ERROR_CODES = {
  HS_ERR_USAGE: { status: 400, exit: 2 },
  HS_ERR_CONFIG_INVALID: { status: 500, exit: 2 },
  HS_ERR_LISTEN_FAILED: { status: 500, exit: 1 },
  HS_ERR_BAD_REQUEST: { status: 400, exit: 1 },
  HS_ERR_NOT_FOUND: { status: 404, exit: 1 },
  HS_ERR_UNKNOWN_SOURCE: { status: 404, exit: 1 },
  HS_ERR_UNKNOWN_UPSTREAM: { status: 404, exit: 1 },
  HS_ERR_BODY_TOO_LARGE: { status: 413, exit: 1 },
  HS_ERR_SIGNATURE_INVALID: { status: 401, exit: 1 },
  HS_ERR_CAPTURE_FAILED: { status: 503, exit: 1 },
  HS_ERR_SHUTTING_DOWN: { status: 503, exit: 1 },
  HS_ERR_LEGACY_UNREACHABLE: { status: 502, exit: 1 },
  HS_ERR_UPSTREAM_UNREACHABLE: { status: 502, exit: 1 },
  HS_ERR_EFFECTS_INVALID: { status: 400, exit: 1 },
  HS_ERR_IMPORT_INVALID: { status: 400, exit: 1 },
  HS_ERR_STORE_VERSION: { status: 500, exit: 1 },
  HS_ERR_STORE_CORRUPT: { status: 500, exit: 1 },
  HS_ERR_STORE_UNREADABLE: { status: 500, exit: 1 },
  HS_ERR_WAL_WRITE: { status: 503, exit: 1 },
  HS_ERR_FLOWS_INVALID: { status: 400, exit: 1 },
  HS_ERR_FLOW_YAML: { status: 400, exit: 1 },
  HS_ERR_FLOW_INVALID: { status: 400, exit: 1 },
  HS_ERR_UNKNOWN_OP: { status: 400, exit: 1 },
  HS_ERR_OP_ARGS: { status: 400, exit: 1 },
  HS_ERR_UNKNOWN_NODE: { status: 400, exit: 1 },
  HS_ERR_FLOW_CYCLE: { status: 400, exit: 1 },
  HS_ERR_EXPRESSION: { status: 400, exit: 1 },
  HS_ERR_NODE_REFERENCE: { status: 400, exit: 1 },
  HS_ERR_NODE_FAILED: { status: 500, exit: 1 },
  HS_ERR_NO_RECORDING: { status: 500, exit: 1 },
  HS_ERR_UPSTREAM_ERROR: { status: 502, exit: 1 },
  HS_ERR_CAPABILITIES_MISSING: { status: 409, exit: 1 },
  HS_ERR_REPLAY_NOT_FOUND: { status: 404, exit: 1 },
  HS_ERR_REPLAY_RESOURCES: { status: 503, exit: 1 },
  HS_ERR_ANALYZE_RESOURCES: { status: 503, exit: 1 },
  HS_ERR_QUERY_INCOMPLETE: { status: 503, exit: 1 },
  HS_ERR_ROUTES_INVALID: { status: 400, exit: 2 },
  HS_ERR_RULES_INVALID: { status: 400, exit: 2 },
  HS_ERR_CHECKS_INVALID: { status: 400, exit: 2 },
  HS_ERR_CUTOVER_BLOCKED: { status: 409, exit: 1 },
  HS_ERR_UNAUTHORIZED: { status: 401, exit: 1 },
  HS_ERR_ORACLE_FAILED: { status: 502, exit: 1 },
  HS_ERR_QUERY_FAILED: { status: 400, exit: 1 },
  HS_ERR_NOTEBOOK_INVALID: { status: 400, exit: 1 },
  HS_ERR_CHART_INVALID: { status: 400, exit: 1 },
  HS_ERR_INTERNAL: { status: 500, exit: 70 },
} as const satisfies Record<string, { status: number; exit: number }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** An error a user can act on: a stable code, a message that says what to do, optional details. */
export class HsError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly exitCode: number;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: { details?: Record<string, unknown>; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'HsError';
    this.code = code;
    this.status = ERROR_CODES[code].status;
    this.exitCode = ERROR_CODES[code].exit;
    this.details = options.details;
  }
}

export function isHsError(err: unknown): err is HsError {
  return err instanceof HsError;
}

/** The JSON body every error response carries. */
export interface ErrorBody {
  code: ErrorCode;
  message: string;
  [extra: string]: unknown;
}

export function errorBody(err: HsError): ErrorBody {
  return { code: err.code, message: err.message, ...(err.details ?? {}) };
}

/** Whether an error is DuckDB running out of memory or of disk (its temporary files, or the output's), not a bug or bad data. */
export function isOutOfResources(err: unknown): boolean {
  return !(err instanceof HsError) && /Out of Memory Error|No space left on device|Could not write/i.test((err as Error)?.message ?? '');
}
