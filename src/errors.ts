/**
 * The one error model of the server. Features throw AppError (through the factories of the
 * catalogue); every transport turns whatever was thrown into an AppError with `toAppError` and renders
 * that (HTTP body, gateway reply, CLI line and exit code). Anything that is not an AppError, a driver
 * error we translate, or a body-parser failure is an internal error: logged in full (scrubbed by the
 * logger), shown only as INTERNAL.
 */

import { isDbConnectionError, translateDbError } from './db/errors.js';
import { type AppError, errors, isAppError } from './error-catalogue.js';

export * from './error-catalogue.js';

/** Where `toAppError` reports what it could not map (a pino logger, or the CLI's debug printer). */
export interface ErrorLog {
  error(obj: Record<string, unknown>, msg: string): void;
}

/**
 * Any thrown value → the AppError to show. Body-parser failures (ultimate-express's errors carry no
 * status) become 400/413, driver constraint and lock errors their domain error, the rest INTERNAL
 * after being logged with `context`.
 */
export function toAppError(err: unknown, log?: ErrorLog, context: Record<string, unknown> = {}): AppError {
  if (isAppError(err)) return err;
  if (err instanceof SyntaxError) return errors.validation('The request body is not valid JSON.');
  const e = err as { message?: string; type?: string; status?: number } | null;
  if (e?.message === 'Request entity too large' || e?.type === 'entity.too.large' || e?.status === 413) {
    return errors.payloadTooLarge();
  }
  if (e?.type === 'entity.parse.failed') return errors.validation('The request body is not valid JSON.');
  const db = translateDbError(err);
  if (db) {
    if (isDbConnectionError(err)) logOutage(log, err, context);
    return db;
  }
  log?.error({ err, ...context }, 'unhandled error');
  return errors.internal();
}

/** When each log last reported an unreachable database: once per 30 s, not once per request. */
const outageLogged = new WeakMap<ErrorLog, number>();
const OUTAGE_LOG_INTERVAL_MS = 30_000;

function logOutage(log: ErrorLog | undefined, err: unknown, context: Record<string, unknown>): void {
  if (!log) return;
  const now = Date.now();
  if (now - (outageLogged.get(log) ?? 0) < OUTAGE_LOG_INTERVAL_MS) return;
  outageLogged.set(log, now);
  log.error({ err, ...context }, 'database unavailable: answering 503');
}
