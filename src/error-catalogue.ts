/**
 * The error catalogue: AppError and the factories every code comes from (the wire codes of
 * DESIGN.md §6–§8, nothing made up inline). Import it through src/errors.ts, which adds the one
 * mapper from any thrown value to an AppError; this file exists apart only so the driver-error
 * translator (src/db/errors.ts) can build AppErrors without an import cycle.
 */

export interface ErrorDetail {
  path: string;
  message: string;
}

export class AppError extends Error {
  readonly code: string;
  readonly status: number;
  readonly details?: ErrorDetail[];
  /** Extra response headers, e.g. Retry-After on 429. */
  readonly headers?: Record<string, string>;
  /** Extra fields of the error body, beside code and message (QUOTA_EXCEEDED's numbers). */
  readonly extra?: Record<string, unknown>;

  constructor(
    code: string,
    status: number,
    message: string,
    options: {
      details?: ErrorDetail[];
      headers?: Record<string, string>;
      extra?: Record<string, unknown>;
      cause?: unknown;
    } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.status = status;
    if (options.details) this.details = options.details;
    if (options.headers) this.headers = options.headers;
    if (options.extra) this.extra = options.extra;
  }

  toJSON(): { code: string; message: string; details?: ErrorDetail[] } {
    return {
      ...this.extra,
      code: this.code,
      message: this.message,
      ...(this.details ? { details: this.details } : {}),
    };
  }
}

export const isAppError = (e: unknown): e is AppError => e instanceof AppError;

export const errors = {
  validation: (message = 'The request is not valid.', details?: ErrorDetail[]) =>
    new AppError('VALIDATION_FAILED', 400, message, details ? { details } : {}),
  unauthenticated: (message = 'Authentication is required.') => new AppError('UNAUTHENTICATED', 401, message),
  invalidCredentials: () => new AppError('INVALID_CREDENTIALS', 401, 'Invalid username or password.'),
  mfaRequired: () => new AppError('MFA_REQUIRED', 401, 'A two-factor code is required.'),
  invalidMfaCode: () => new AppError('INVALID_MFA_CODE', 401, 'The two-factor code is not valid.'),
  tokenExpired: () => new AppError('TOKEN_EXPIRED', 401, 'The access token has expired.'),
  tokenReused: () =>
    new AppError('TOKEN_REUSED', 401, 'This refresh token was already used; the session has been revoked.'),
  forbidden: (message = 'You do not have permission to do that.') => new AppError('FORBIDDEN', 403, message),
  accountLocked: (retryAfterSeconds?: number) =>
    new AppError(
      'ACCOUNT_LOCKED',
      403,
      'This account is temporarily locked after too many failed logins.',
      retryAfterSeconds ? { headers: { 'Retry-After': String(retryAfterSeconds) } } : {},
    ),
  notFound: (message = 'Not found.') => new AppError('NOT_FOUND', 404, message),
  conflict: (message = 'That conflicts with an existing resource.') => new AppError('CONFLICT', 409, message),
  payloadTooLarge: (message = 'The request body is too large.') => new AppError('PAYLOAD_TOO_LARGE', 413, message),
  /**
   * 413: the upload would take the user's stored attachments past VOICECHAT_UPLOAD_QUOTA_BYTES (not
   * in DESIGN.md's list: issue 14). The body carries the numbers: `used_bytes`, `quota_bytes` and the
   * upload's `size_bytes` (a lower bound when the body was cut off without a Content-Length).
   */
  quotaExceeded: (usedBytes: number, quotaBytes: number, sizeBytes: number) =>
    new AppError(
      'QUOTA_EXCEEDED',
      413,
      `This upload (${sizeBytes} bytes) would exceed your upload quota: ${usedBytes} of ${quotaBytes} bytes used. Delete messages with attachments to free space.`,
      { extra: { used_bytes: usedBytes, quota_bytes: quotaBytes, size_bytes: sizeBytes } },
    ),
  unsupportedMediaType: (message = 'That file type is not allowed.') =>
    new AppError('UNSUPPORTED_MEDIA_TYPE', 415, message),
  rateLimited: (retryAfterSeconds: number) =>
    new AppError('RATE_LIMITED', 429, 'Too many requests; try again later.', {
      headers: { 'Retry-After': String(Math.max(1, Math.ceil(retryAfterSeconds))) },
    }),
  /** 503: a temporary condition (shutdown, a database lock held past its wait budget); retry later. */
  unavailable: (message = 'The service is temporarily unavailable.', retryAfterSeconds = 1) =>
    new AppError('SERVICE_UNAVAILABLE', 503, message, {
      headers: { 'Retry-After': String(Math.max(1, Math.ceil(retryAfterSeconds))) },
    }),
  /** No mediasoup worker (or voice turned off): text chat works, voice does not. */
  voiceUnavailable: () => new AppError('VOICE_UNAVAILABLE', 503, 'Voice is not available on this server right now.'),
  /** voice_join into a channel with `e2ee_voice` on, without declaring `"e2ee": true` (issue 15). */
  e2eeRequired: () =>
    new AppError(
      'E2EE_REQUIRED',
      403,
      'This voice channel requires end-to-end encrypted voice; join with "e2ee": true from a client that encrypts.',
    ),
  internal: () => new AppError('INTERNAL', 500, 'An internal error occurred.'),
  // Gateway frames (DESIGN.md §7): answered in an error reply; ten of them close the socket (4002).
  invalidJson: () => new AppError('INVALID_JSON', 400, 'The frame is not valid JSON.'),
  binaryNotAccepted: () => new AppError('BINARY_NOT_ACCEPTED', 400, 'Frames must be JSON text.'),
  unknownOp: () => new AppError('UNKNOWN_OP', 400, 'Unknown op.'),
  resumeFailed: () => new AppError('RESUME_FAILED', 400, 'That session cannot be resumed; a fresh ready was sent.'),
};

/** Raised for bad configuration or keys; the CLI prints its message as the one-line reason. */
export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(
      problems.length === 1
        ? `Invalid configuration: ${problems[0]}`
        : `Invalid configuration (${problems.length} problems): ${problems.join('; ')}`,
    );
    this.name = 'ConfigError';
    this.problems = problems;
  }
}
