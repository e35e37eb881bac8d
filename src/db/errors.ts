/**
 * Driver errors → domain errors, in one place for both dialects: unique violation → CONFLICT,
 * check / not-null / foreign-key violation → VALIDATION_FAILED naming the constraint (never the value),
 * a SQLite lock held past its wait budget or a database that cannot be reached (connection refused,
 * reset or timed out, the pool unable to hand out a connection, the server shutting down) → 503
 * SERVICE_UNAVAILABLE with Retry-After (never a 500).
 */
import { type AppError, errors } from '../error-catalogue.js';

interface DriverError {
  code?: string;
  constraint?: string;
  message?: string;
  column?: string;
  name?: string;
}

/** Socket-level failures of the connection to the database server. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ECONNABORTED',
]);

/**
 * pg's own connection failures carry no code, only these messages (pg 8: a socket that closed, a
 * connect timeout, a client whose connection already failed); knex puts the SQL and " - " before
 * them when a query was running.
 */
const PG_CONNECTION_MESSAGES =
  /(?:^| - )(Connection terminated( unexpectedly| due to connection timeout)?|Client has encountered a connection error and is not queryable|Client was closed and is not queryable|timeout expired)$/;

/**
 * Is this a failure to reach the database (rather than of the statement)? SQLSTATE class 08
 * (connection exception), 57P01–57P03 (server shutting down or starting), 53300 (too many
 * connections), a network error code, pg's connection messages, knex's pool acquire timeout, and
 * SQLite failing to open its file.
 */
export function isDbConnectionError(e: unknown): boolean {
  if (!e || typeof e !== 'object') return false;
  const err = e as DriverError;
  const code = typeof err.code === 'string' ? err.code : '';
  if (code.startsWith('08') && code.length === 5) return true;
  if (code === '57P01' || code === '57P02' || code === '57P03' || code === '53300') return true;
  if (NETWORK_CODES.has(code)) return true;
  if (code.startsWith('SQLITE_CANTOPEN')) return true;
  if (err.name === 'KnexTimeoutError') return true;
  return PG_CONNECTION_MESSAGES.test(err.message ?? '');
}

export function translateDbError(e: unknown): AppError | undefined {
  if (!e || typeof e !== 'object') return undefined;
  const err = e as DriverError;
  const code = err.code ?? '';
  const message = err.message ?? '';
  // Another connection held the SQLite write lock past busy_timeout: temporary, so 503 + Retry-After.
  if (code.startsWith('SQLITE_BUSY')) return errors.unavailable('The database is busy; try again shortly.');
  // The database cannot be reached: temporary from the client's point of view, so 503 as well.
  if (isDbConnectionError(e)) return errors.unavailable('The database is unavailable; try again shortly.', 5);
  // SQLite (better-sqlite3): codes like SQLITE_CONSTRAINT_UNIQUE, message names the constraint.
  if (code.startsWith('SQLITE_CONSTRAINT')) {
    if (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
      return errors.conflict();
    }
    if (code === 'SQLITE_CONSTRAINT_CHECK') {
      const name = /CHECK constraint failed: (\w+)/.exec(message)?.[1] ?? 'check';
      return constraintError(name);
    }
    if (code === 'SQLITE_CONSTRAINT_NOTNULL') {
      const col = /NOT NULL constraint failed: [\w]+\.(\w+)/.exec(message)?.[1] ?? 'field';
      return errors.validation('A required value is missing.', [{ path: col, message: 'is required' }]);
    }
    if (code === 'SQLITE_CONSTRAINT_TRIGGER') {
      // Our triggers RAISE(ABORT, '<constraint name>') (e.g. dm_requires_encryption).
      const name = /(\w+)$/.exec(message.trim())?.[1] ?? 'trigger';
      return constraintError(name);
    }
    if (code === 'SQLITE_CONSTRAINT_FOREIGNKEY') {
      return errors.validation('A referenced resource does not exist.');
    }
    return errors.validation('The data violates a database constraint.');
  }
  // Postgres SQLSTATE codes.
  switch (code) {
    case '23505':
      return errors.conflict();
    case '23514':
      return constraintError(err.constraint ?? 'check');
    case '23502':
      return errors.validation('A required value is missing.', [
        { path: err.column ?? 'field', message: 'is required' },
      ]);
    case '23503':
      return errors.validation('A referenced resource does not exist.');
    case '22001':
      return errors.validation('A value is too long.');
    case '22021': // NUL byte or invalid UTF-8 in text: SQLite stores it, Postgres refuses it
    case '22P05':
      return errors.validation('A value contains characters that cannot be stored.');
    case '22P02':
    case '22003':
      return errors.validation('A value has the wrong format.');
    default:
      return undefined;
  }
}

function constraintError(name: string): AppError {
  return errors.validation(`The value violates the ${name} rule.`, [{ path: name, message: 'constraint violated' }]);
}

/** Is this a unique violation (for code that retries or maps it to a specific message)? */
export const isUniqueViolation = (e: unknown): boolean => translateDbError(e)?.code === 'CONFLICT';
