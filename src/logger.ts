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
  // knex: "<sql with values> - <driver message>", possibly behind a "SqliteError: " / "error: " prefix
  // (in stacks) and possibly spanning lines (values with newlines). Stack frames after it are kept.
  const framesAt = message.search(/\n\s+at /);
  const head = framesAt === -1 ? message : message.slice(0, framesAt);
  const frames = framesAt === -1 ? '' : message.slice(framesAt);
  const m = /^((?:[\w.]*Error: )?)(?:insert|update|delete|select|with|create|alter|drop)\b/i.exec(head);
  const cut = head.lastIndexOf(' - ');
  return m && cut > 0 ? `${m[1]}${head.slice(cut + 3)}${frames}` : message;
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

/**
 * stdout, written synchronously line by line and never waited on. pino's default (asynchronous, with
 * a synchronous flush on exit that retries EAGAIN and EPIPE forever) kept a stopped server alive when
 * stdout was a pipe nobody read any more (`serve | head -1`): SIGTERM closed the port, then the exit
 * flush spun. Here a reader that is gone (EPIPE) stops logging, a reader that has stalled (EAGAIN)
 * drops lines beyond a 4 MiB backlog instead of blocking, and there is nothing left to flush at exit.
 */
export function stdoutDestination(): DestinationStream {
  const dest = pino.destination({ dest: 1, sync: true, maxLength: 4 * 1024 * 1024, retryEAGAIN: () => false });
  // After pino's own EPIPE filter (which silences the stream), any write error lands here: ignored,
  // because the log has nowhere else to go and must not take the process down or hold it up.
  dest.on('error', () => {});
  return dest;
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
    destination ?? stdoutDestination(),
  );
}
