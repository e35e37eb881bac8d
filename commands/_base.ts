/**
 * Base of every command: shared flags (--config, --debug) and the one error mapper of the CLI —
 * known errors become a one-line reason and a non-zero exit code; a stack trace only with --debug.
 */
import { Command, Errors, Flags } from '@oclif/core';
import { type Config, loadConfig } from '../src/config/index.js';
import type { SettingKey } from '../src/config/schema.js';
import { createDb, type Db, dbOptionsOf } from '../src/db/knex.js';
import { migrationStatus } from '../src/db/migrator.js';
import { ConfigError, toAppError } from '../src/errors.js';
import { scrubErrorMessage } from '../src/logger.js';
import { SetupError } from '../src/setup/initialise.js';

/** Exit codes: 1 general failure, 2 usage, 3 configuration/keys, 4 refused (would destroy data), 5 not found. */
export const EXIT = { failure: 1, usage: 2, config: 3, refused: 4, notFound: 5 } as const;

/** An expected failure with its exit code; printed as one line. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exit: number = EXIT.failure,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export abstract class BaseCommand extends Command {
  static override baseFlags = {
    config: Flags.string({ summary: 'Path of the config file (voicechat.env).', helpGroup: 'GLOBAL' }),
    debug: Flags.boolean({ summary: 'Print stack traces on failure.', default: false, helpGroup: 'GLOBAL' }),
  };

  override async init(): Promise<void> {
    // Everything the CLI creates (config, keyring, SQLite files, uploads) is private to its owner.
    process.umask(0o077);
    await super.init();
  }

  /** Loads the configuration: `--config`, then the usual lookup; `overrides` (from flags) win over everything. */
  protected loadConfig(
    configPath: string | undefined,
    overrides: Partial<Record<SettingKey, string | number | undefined>> = {},
  ): Config {
    return loadConfig({ configPath, flags: overrides });
  }

  /**
   * Opens the configured database for the length of `fn` (refusing while migrations are pending, like
   * `serve` does) and always closes it.
   */
  protected async withDatabase<T>(
    config: Config,
    fn: (db: Db) => Promise<T>,
    opts: { allowPending?: boolean } = {},
  ): Promise<T> {
    const db = createDb(dbOptionsOf(config));
    try {
      let pending: string[];
      try {
        pending = (await migrationStatus(db)).pending;
      } catch (e) {
        throw new CliError(`database unreachable (${(e as Error).message.split('\n')[0]})`, EXIT.config);
      }
      if (pending.length > 0 && !opts.allowPending) {
        throw new CliError(
          `${pending.length} database migration(s) pending; run \`voicechat migrate up\``,
          EXIT.config,
        );
      }
      return await fn(db);
    } finally {
      await db.destroy();
    }
  }

  protected override async catch(err: Error & { exitCode?: number; oclif?: { exit?: number } }): Promise<unknown> {
    const debug = this.argv.includes('--debug');
    if (err.oclif?.exit !== undefined && !(err instanceof CliError)) return super.catch(err); // usage/help errors
    const { line, exit } = failureOf(err);
    if (debug && err.stack) this.logToStderr(scrubErrorMessage(err.stack));
    // Printed here, on one line, rather than by oclif (which wraps long lines and, in development
    // mode, adds a stack trace); the thrown error only carries the exit code.
    this.logToStderr(`Error: ${line}`);
    const failure = new Errors.CLIError(line, { exit }) as Errors.CLIError & { skipOclifErrorHandling: boolean };
    failure.skipOclifErrorHandling = true;
    throw failure;
  }
}

/**
 * The CLI's rendering of a failure: its own refusals (CliError, ConfigError, SetupError) as written;
 * anything else through the one mapper (`toAppError`: AppErrors, driver errors translated), an
 * unexpected error as its first line with SQL values scrubbed. Exit codes as in EXIT.
 */
export function failureOf(err: Error): { line: string; exit: number } {
  const first = (message: string) => scrubErrorMessage(message).split('\n')[0] as string;
  if (err instanceof CliError) return { line: first(err.message), exit: err.exit };
  if (err instanceof ConfigError) return { line: first(err.message), exit: EXIT.config };
  if (err instanceof SetupError)
    return { line: first(err.message), exit: err.kind === 'exists' ? EXIT.refused : EXIT.failure };
  const appError = toAppError(err);
  if (appError.code !== 'INTERNAL') {
    return { line: first(appError.message), exit: appError.status === 404 ? EXIT.notFound : EXIT.failure };
  }
  return {
    line: first(err.name && err.name !== 'Error' ? `${err.name}: ${err.message}` : err.message),
    exit: EXIT.failure,
  };
}
