/**
 * First-time set-up of a server: config file, fresh keyring, schema, first admin. Shared by
 * `voicechat init` (interactive or `--yes`) and `voicechat serve` on a first run with no config
 * anywhere. Everything is validated (inputs, database connection) before the first file is written,
 * and an existing keyring is never replaced without `force`: losing keys loses every MFA secret.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import { type Config, findConfigFile, formatEnvFile, loadConfig } from '../config/index.js';
import { Keyring } from '../crypto/keyring.js';
import { createDb, type Db, type Dialect, dbOptionsOf, ping } from '../db/knex.js';
import { migrateUp } from '../db/migrator.js';
import { passwordSchema, usernameSchema } from '../users/schema.js';
import { createUser } from '../users/service.js';

export type Registration = 'open' | 'invite' | 'closed';

export interface InitialiseOptions {
  /** Data directory (SQLite file, uploads). Resolved against `cwd`. */
  dataDir: string;
  /** Where to write the config; default `<dataDir>/voicechat.env`. The keyring goes beside it. */
  configPath?: string | undefined;
  /** Empty or undefined = SQLite in the data dir; `postgres://…` = Postgres. */
  databaseUrl?: string | undefined;
  /** Absolute path of a file holding the database URL (`VOICECHAT_DATABASE_URL_FILE`), written as that reference. */
  databaseUrlFile?: string | undefined;
  publicUrl?: string | undefined;
  /** Numbers, or raw strings from the environment (validated with everything else before writing). */
  port?: number | string | undefined;
  rtcPort?: number | string | undefined;
  registration?: Registration | undefined;
  /** The first administrator; omitted = none yet (created later with `voicechat users create`). */
  admin?: { username: string; password: string } | undefined;
  /** Replace an existing config and keyring. */
  force?: boolean | undefined;
  cwd?: string | undefined;
}

export interface InitialiseResult {
  configPath: string;
  keyringFile: string;
  dataDir: string;
  dialect: Dialect;
  migrationsApplied: string[];
  admin?: { id: string; username: string };
}

/** An expected refusal (existing keyring, bad input); `kind` lets the CLI choose its exit code. */
export class SetupError extends Error {
  constructor(
    message: string,
    readonly kind: 'exists' | 'invalid' | 'database',
  ) {
    super(message);
    this.name = 'SetupError';
  }
}

export function resolvePaths(opts: Pick<InitialiseOptions, 'dataDir' | 'configPath' | 'cwd'>) {
  const cwd = opts.cwd ?? process.cwd();
  const dataDir = path.resolve(cwd, opts.dataDir);
  const configPath = path.resolve(cwd, opts.configPath ?? path.join(dataDir, 'voicechat.env'));
  return { dataDir, configPath, keyringFile: path.join(path.dirname(configPath), 'keys.json') };
}

/** Connects once to check a database URL (init's connection test); the reason never includes the URL. */
export async function testDatabaseConnection(databaseUrl: string): Promise<void> {
  const db = createDb({ dialect: 'pg', databaseUrl, poolMax: 1 });
  try {
    await ping(db);
  } catch (e) {
    throw new SetupError(`cannot connect to the database (${describeDbError(e)})`, 'database');
  } finally {
    await db.destroy();
  }
}

function describeDbError(e: unknown): string {
  const err = e as { code?: string; message?: string };
  const first = (err.message ?? 'unknown error').split('\n')[0] as string;
  // Driver messages name host, user or database, never the password; strip any URL to be sure.
  return first.replace(/\b[a-z]+:\/\/\S+/gi, '<url>');
}

function writeFileAtomic(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
}

export async function initialise(opts: InitialiseOptions): Promise<InitialiseResult> {
  const { dataDir, configPath, keyringFile } = resolvePaths(opts);

  if (!opts.force) {
    if (existsSync(keyringFile)) {
      throw new SetupError(
        `keyring ${keyringFile} already exists; refusing to replace it (losing its keys loses every MFA secret and encrypted value). Pass --force only if you mean to start over`,
        'exists',
      );
    }
    if (existsSync(configPath)) {
      throw new SetupError(`config ${configPath} already exists; pass --force to overwrite it`, 'exists');
    }
  }

  if (opts.admin) {
    const problems: string[] = [];
    const u = usernameSchema.safeParse(opts.admin.username);
    if (!u.success) problems.push(`admin username ${u.error.issues[0]?.message}`);
    const p = passwordSchema.safeParse(opts.admin.password);
    if (!p.success) problems.push(`admin password ${p.error.issues[0]?.message}`);
    if (problems.length) throw new SetupError(problems.join('; '), 'invalid');
  }

  const values: Record<string, string> = { VOICECHAT_DATA_DIR: dataDir };
  if (opts.databaseUrl) values.VOICECHAT_DATABASE_URL = opts.databaseUrl;
  else if (opts.databaseUrlFile) values.VOICECHAT_DATABASE_URL_FILE = opts.databaseUrlFile;
  if (opts.publicUrl) values.VOICECHAT_PUBLIC_URL = opts.publicUrl;
  if (opts.port !== undefined) values.VOICECHAT_PORT = String(opts.port);
  if (opts.rtcPort !== undefined) values.VOICECHAT_RTC_PORT = String(opts.rtcPort);
  if (opts.registration) values.VOICECHAT_REGISTRATION = opts.registration;
  const text = formatEnvFile(values, [
    'VoiceChat configuration, written by `voicechat init`. KEY=VALUE lines (systemd EnvironmentFile= format).',
    'Every setting and its default: see README.md. Environment variables override this file.',
  ]);

  // Validate exactly what will be written, before writing anything: a staged copy is loaded with an
  // empty environment so only the file's own values are checked.
  mkdirSync(path.dirname(configPath), { recursive: true, mode: 0o700 });
  const staged = `${configPath}.${process.pid}.check`;
  let config: Config;
  try {
    writeFileAtomic(staged, text);
    config = loadConfig({ configPath: staged, env: {}, cwd: opts.cwd });
  } finally {
    rmSync(staged, { force: true });
  }
  if (config.dialect === 'pg') await testDatabaseConnection(config.databaseUrl as string);

  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  writeFileAtomic(configPath, text);
  Keyring.generate({ staged: true }).save(keyringFile);

  const db: Db = createDb(dbOptionsOf(config));
  try {
    const migrationsApplied = await migrateUp(db);
    const result: InitialiseResult = { configPath, keyringFile, dataDir, dialect: config.dialect, migrationsApplied };
    if (opts.admin) {
      const row = await createUser(db, config, { ...opts.admin, isAdmin: true });
      result.admin = { id: row.id, username: row.username };
    }
    return result;
  } finally {
    await db.destroy();
  }
}

/**
 * True when no config exists anywhere `loadConfig` would look and none was named explicitly, i.e.
 * `serve` is being run for the first time (the README's two-command quick start).
 */
export function isFirstRun(opts: {
  configPath?: string | undefined;
  env?: Record<string, string | undefined>;
}): boolean {
  if (opts.configPath) return false;
  return findConfigFile({ env: opts.env }) === undefined;
}
