/**
 * Loads the configuration once: defaults < config file < VOICECHAT_* environment (and *_FILE) < flags.
 * This is the only module that reads process.env. Every bad setting is reported in one error, by
 * name, never by value.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../errors.js';
import { parseEnvFile } from './env-file.js';
import { type Config, SETTINGS, type SettingKey } from './schema.js';

export { formatEnvFile, parseEnvFile } from './env-file.js';
export type { Config } from './schema.js';
export { SECRET_ENV_NAMES, SETTINGS } from './schema.js';

export type Env = Record<string, string | undefined>;

export interface LoadOptions {
  /** Explicit `--config PATH`. */
  configPath?: string;
  /** Values from command-line flags, keyed by setting. Highest precedence. */
  flags?: Partial<Record<SettingKey, string | number | undefined>>;
  /** Environment; defaults to process.env. */
  env?: Env;
  /** Working directory used to resolve relative paths; defaults to process.cwd(). */
  cwd?: string;
}

/** The data directory when none is configured: `VOICECHAT_DATA_DIR`, else `./data`. */
export function defaultDataDir(env: Env = process.env): string {
  return env.VOICECHAT_DATA_DIR || SETTINGS.dataDir.default;
}

/** Where the config file is looked for, in order (DESIGN.md §4). */
export function configCandidates(opts: { configPath?: string; env?: Env; cwd?: string } = {}): string[] {
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  if (opts.configPath) return [path.resolve(cwd, opts.configPath)];
  const out: string[] = [];
  if (env.VOICECHAT_CONFIG) return [path.resolve(cwd, env.VOICECHAT_CONFIG)];
  if (env.VOICECHAT_DATA_DIR) out.push(path.resolve(cwd, env.VOICECHAT_DATA_DIR, 'voicechat.env'));
  out.push(path.resolve(cwd, 'data', 'voicechat.env'));
  out.push('/etc/voicechat/voicechat.env');
  return out;
}

/** The config file that would be read, or undefined when none exists. */
export function findConfigFile(opts: { configPath?: string; env?: Env; cwd?: string } = {}): string | undefined {
  const candidates = configCandidates(opts);
  // An explicitly named file is returned even when missing, so the caller can report it.
  if (opts.configPath || (opts.env ?? process.env).VOICECHAT_CONFIG) return candidates[0];
  return candidates.find((c) => existsSync(c));
}

/** Any permission bit for "others" (world-readable, -writable or -executable). */
function accessibleByOthers(file: string): boolean {
  try {
    return (statSync(file).mode & 0o007) !== 0;
  } catch {
    return false; // unreadable: reported by the read below
  }
}

export function loadConfig(opts: LoadOptions = {}): Config {
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  const problems: string[] = [];

  const configPath = findConfigFile({ configPath: opts.configPath, env, cwd });
  let fileValues: Record<string, string> = {};
  if (configPath) {
    if (!existsSync(configPath)) {
      problems.push(`config file ${configPath} does not exist`);
    } else if (accessibleByOthers(configPath)) {
      // Like the keyring: it may hold the database URL, SMTP and TURN secrets. Refused, not warned
      // about: a warning in a log nobody reads leaves the secrets open to every local account.
      const mode = (statSync(configPath).mode & 0o777).toString(8).padStart(3, '0');
      problems.push(
        `config file ${configPath} is accessible by others (mode ${mode}); it may hold secrets: run \`chmod o-rwx ${configPath}\``,
      );
    } else {
      try {
        fileValues = parseEnvFile(readFileSync(configPath, 'utf8'));
      } catch (e) {
        problems.push(`config file ${configPath} cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
      }
    }
  }

  const raw: Record<string, unknown> = {};
  for (const [key, setting] of Object.entries(SETTINGS) as [SettingKey, (typeof SETTINGS)[SettingKey]][]) {
    let value: string | undefined = setting.default;
    let source = 'default';
    if (fileValues[setting.env] !== undefined) {
      value = fileValues[setting.env];
      source = 'config file';
    }
    const fileVar = env[`${setting.env}_FILE`] ?? fileValues[`${setting.env}_FILE`];
    if (env[setting.env] !== undefined && env[setting.env] !== '') {
      value = env[setting.env];
      source = 'environment';
    } else if (fileVar) {
      try {
        value = readFileSync(path.resolve(cwd, fileVar), 'utf8').trim();
        source = `${setting.env}_FILE`;
      } catch (e) {
        problems.push(`${setting.env}_FILE: cannot read ${fileVar} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
      }
    }
    const flag = opts.flags?.[key];
    if (flag !== undefined && flag !== '') {
      value = String(flag);
      source = 'flag';
    }
    const parsed = setting.schema.safeParse(value ?? '');
    if (parsed.success) {
      raw[key] = parsed.data;
    } else {
      const msg = parsed.error.issues.map((i) => i.message).join(', ');
      problems.push(`${setting.env} (from ${source}) ${msg}`);
    }
  }

  const cfg = raw as Omit<Config, 'configPath' | 'keyringFile' | 'dialect' | 'sqliteFile'>;
  if (problems.length === 0) {
    if ((cfg.tlsCert && !cfg.tlsKey) || (!cfg.tlsCert && cfg.tlsKey)) {
      problems.push('VOICECHAT_TLS_CERT and VOICECHAT_TLS_KEY must be set together');
    }
    if (cfg.turnUrls.length > 0 && !cfg.turnSecret) {
      problems.push('VOICECHAT_TURN_SECRET is required when VOICECHAT_TURN_URLS is set');
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);

  const dataDir = path.resolve(cwd, cfg.dataDir);
  const keyringFile = cfg.keyringPath
    ? path.resolve(cwd, cfg.keyringPath)
    : env.CREDENTIALS_DIRECTORY && existsSync(path.join(env.CREDENTIALS_DIRECTORY, 'keys.json'))
      ? path.join(env.CREDENTIALS_DIRECTORY, 'keys.json')
      : path.join(configPath ? path.dirname(configPath) : dataDir, 'keys.json');
  const db = cfg.databaseUrl ?? '';
  const dialect: Config['dialect'] = /^postgres(ql)?:/.test(db) ? 'pg' : 'sqlite';
  let sqliteFile = path.join(dataDir, 'voicechat.db');
  if (dialect === 'sqlite' && db) {
    const u = new URL(db);
    sqliteFile = path.resolve(cwd, decodeURIComponent(u.host + u.pathname));
  }
  return { ...cfg, dataDir, configPath, keyringFile, dialect, sqliteFile } as Config;
}
