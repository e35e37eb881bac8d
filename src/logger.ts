/**
 * pino JSON logs to stdout (journald). Secrets are redacted by key name wherever they appear, and
 * errors are serialised without the SQL text knex embeds in driver messages (it carries values).
 */
import pino, { type DestinationStream, type Logger } from 'pino';

export type { Logger } from 'pino';

const SECRET_KEYS = [
  'password',
  'current_password',
  'new_password',
  'password_hash',
  'token',
  'access_token',
  'refresh_token',
  'token_hash',
  'mfa_code',
  'secret',
  'mfa_secret',
  'key',
  'authorization',
  'cookie',
  'sec-websocket-protocol',
  'backup_codes',
  'session_data',
  'ciphertext',
];

const redactPaths = SECRET_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`, `req.headers["${k}"]`]);

/** Strips the "insert into … values (…) - " prefix knex puts before a driver message. */
export function scrubErrorMessage(message: string): string {
  const cut = message.lastIndexOf(' - ');
  return /^(insert|update|delete|select|with|create|alter|drop)\b/i.test(message) && cut > 0
    ? message.slice(cut + 3)
    : message;
}

function serializeError(err: unknown): Record<string, unknown> {
  if (!(err instanceof Error)) return { message: String(err) };
  const e = err as Error & { code?: unknown; status?: unknown };
  const stack = e.stack ? scrubErrorMessage(e.stack) : undefined;
  return {
    type: e.name,
    message: scrubErrorMessage(e.message),
    ...(e.code !== undefined ? { code: e.code } : {}),
    ...(e.status !== undefined ? { status: e.status } : {}),
    ...(stack ? { stack } : {}),
  };
}

export function createLogger(level = 'info', destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'voicechat' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: redactPaths, censor: '[redacted]' },
      serializers: { err: serializeError, error: serializeError },
    },
    destination,
  );
}
