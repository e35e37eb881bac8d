/** The CLI renders failures through the one mapper: one scrubbed line and the documented exit code. */
import { describe, expect, it } from 'vitest';
import { CliError, EXIT, failureOf } from '../../commands/_base.js';
import { ConfigError, errors } from '../../src/errors.js';

const knexError = (sql: string, driver: string, code: string) =>
  Object.assign(new Error(`${sql} - ${driver}`), { code });

describe('CLI failure lines', () => {
  it('translates driver errors and never prints the SQL values knex puts in messages', () => {
    const unique = knexError(
      "insert into `users` (`password_hash`, `username`) values ('$argon2id$secret-hash', 'alice')",
      'UNIQUE constraint failed: users.username',
      'SQLITE_CONSTRAINT_UNIQUE',
    );
    expect(failureOf(unique)).toEqual({ line: 'That conflicts with an existing resource.', exit: EXIT.failure });
    const odd = knexError("update `users` set `email` = 'me@example.org'", 'disk I/O error', 'SQLITE_IOERR');
    const { line } = failureOf(odd);
    expect(line).toBe('disk I/O error');
    expect(line).not.toContain('example.org');
  });

  it('keeps its own refusals and maps AppErrors to exit codes', () => {
    expect(failureOf(new CliError('nope', EXIT.refused))).toEqual({ line: 'nope', exit: EXIT.refused });
    expect(failureOf(new ConfigError(['x is bad'])).exit).toBe(EXIT.config);
    expect(failureOf(errors.notFound('No user named "bob".'))).toEqual({
      line: 'No user named "bob".',
      exit: EXIT.notFound,
    });
    expect(failureOf(new TypeError('boom\nsecond line'))).toEqual({ line: 'TypeError: boom', exit: EXIT.failure });
  });
});
