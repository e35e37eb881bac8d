/**
 * Driver errors → domain errors, in one place for both dialects: unique violation → CONFLICT,
 * check / not-null / foreign-key violation → VALIDATION_FAILED naming the constraint (never the value),
 * a SQLite lock held past its wait budget → 503 SERVICE_UNAVAILABLE with Retry-After (never a 500).
 */
import { type AppError, errors } from '../error-catalogue.js';

interface DriverError {
  code?: string;
  constraint?: string;
  message?: string;
  column?: string;
}

export function translateDbError(e: unknown): AppError | undefined {
  if (!e || typeof e !== 'object') return undefined;
  const err = e as DriverError;
  const code = err.code ?? '';
  const message = err.message ?? '';
  // Another connection held the SQLite write lock past busy_timeout: temporary, so 503 + Retry-After.
  if (code.startsWith('SQLITE_BUSY')) return errors.unavailable('The database is busy; try again shortly.');
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
