import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { input, password, select } from '@inquirer/prompts';
import { Flags } from '@oclif/core';
import { configPathFromEnvironment, type LayeredSetting, layeredSettings, parseEnvFile } from '../src/config/index.js';
import { cliInvocation, shellWord } from '../src/config/invocation.js';
import {
  type InitialiseOptions,
  initialise,
  type Registration,
  resolvePaths,
  SetupError,
  testDatabaseConnection,
} from '../src/setup/initialise.js';
import { passwordSchema, usernameSchema } from '../src/users/schema.js';
import { BaseCommand, CliError, EXIT } from './_base.js';

const REGISTRATION = ['open', 'invite', 'closed'] as const;

export default class Init extends BaseCommand {
  static override summary = 'Set up a server: config file, fresh keyring, database schema and the first admin.';
  static override description =
    `Asks for the data directory, database (SQLite file or Postgres URL, tested before use), public URL, ports, registration policy and the first admin's username and password. With --yes nothing is asked: flags (or defaults) are used.

Writes the config (voicechat.env, mode 0600) to --config when given, else into the data directory, and a fresh keyring (keys.json, mode 0600) beside it; applies the migrations; creates the admin (Argon2id).

Refuses to replace an existing keyring unless --force: losing the keys loses every MFA secret and encrypted value.`;
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --yes --data-dir ./data --admin-username admin --admin-password-file ./pw.txt',
    '<%= config.bin %> <%= command.id %> --yes --config /etc/voicechat/voicechat.env --data-dir /var/lib/voicechat --database-url postgres://voicechat@localhost/voicechat --public-url https://chat.example.org',
  ];
  static override flags = {
    yes: Flags.boolean({ char: 'y', summary: 'Unattended: ask nothing, use flags and defaults.', default: false }),
    force: Flags.boolean({
      summary: 'Replace an existing config and keyring (destroys the old keys).',
      default: false,
    }),
    'data-dir': Flags.string({ summary: 'Data directory (default: VOICECHAT_DATA_DIR, else ./data).' }),
    'database-url': Flags.string({ summary: 'Postgres URL; omit for SQLite in the data directory.' }),
    'public-url': Flags.string({ summary: 'Public URL clients use, e.g. https://chat.example.org.' }),
    port: Flags.integer({ summary: 'HTTP/WebSocket port (default 8080).', min: 0, max: 65535 }),
    'rtc-port': Flags.integer({ summary: 'Media (RTC) UDP+TCP port (default 40000).', min: 1, max: 65535 }),
    registration: Flags.string({ summary: 'Who may register (default invite).', options: [...REGISTRATION] }),
    'admin-username': Flags.string({ summary: "First admin's username." }),
    'admin-password-file': Flags.string({ summary: "File holding the first admin's password (first line)." }),
    json: Flags.boolean({ summary: 'Print the result as JSON.', default: false }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Init);
    let options = resolveOptions(flags);
    if (flags['admin-password-file'] && !flags['admin-username']) {
      throw new CliError('--admin-password-file needs --admin-username', EXIT.usage);
    }
    if (flags['admin-username']) {
      if (!flags['admin-password-file']) {
        throw new CliError(
          '--admin-username needs --admin-password-file (passwords are never taken as flags)',
          EXIT.usage,
        );
      }
      options.admin = { username: flags['admin-username'], password: readPasswordFile(flags['admin-password-file']) };
    }
    if (!flags.yes) {
      if (!process.stdin.isTTY) throw new CliError('no terminal to ask questions on; use --yes with flags', EXIT.usage);
      options = await ask(options);
    }

    const result = await initialise(options);
    if (flags.json) {
      this.log(JSON.stringify({ ...result, admin: result.admin ?? null }));
      return;
    }
    this.log(`Config:   ${result.configPath}`);
    this.log(`Keyring:  ${result.keyringFile}  (back it up: without it MFA secrets and encrypted data are lost)`);
    this.log(`Database: ${result.dialect}, ${result.migrationsApplied.length} migration(s) applied`);
    this.log(
      result.admin
        ? `Admin:    ${result.admin.username}`
        : `Admin:    none yet; create one with \`${cliInvocation({ packageRoot: this.config.root })} users create NAME --admin --config ${shellWord(result.configPath)}\``,
    );
    const cli = cliInvocation({ packageRoot: this.config.root });
    this.log(`Start the server with: ${cli} serve --config ${shellWord(result.configPath)}`);
  }
}

const INIT_SETTINGS = ['dataDir', 'databaseUrl', 'publicUrl', 'port', 'rtcPort', 'registration'] as const;

/**
 * What init sets up, resolved as `serve` resolves its config: defaults < the config being replaced
 * (with --force) < VOICECHAT_* environment < flags. Without this, `VOICECHAT_DATABASE_URL=postgres://…
 * voicechat init --yes` set up SQLite and `serve` then refused on the Postgres migrations.
 */
function resolveOptions(flags: {
  config?: string | undefined;
  'data-dir'?: string | undefined;
  'database-url'?: string | undefined;
  'public-url'?: string | undefined;
  port?: number | undefined;
  'rtc-port'?: number | undefined;
  registration?: string | undefined;
  force: boolean;
}): InitialiseOptions {
  const flagValues = {
    dataDir: flags['data-dir'],
    databaseUrl: flags['database-url'],
    publicUrl: flags['public-url'],
    port: flags.port,
    rtcPort: flags['rtc-port'],
    registration: flags.registration,
  };
  // The config path depends on the data directory, and the file layer on the config path.
  const early = layeredSettings(['dataDir'], { flags: flagValues });
  const dataDir = plain(early.dataDir) ?? './data';
  // Undefined = beside the data directory (decided after the interactive form may change it).
  const configPath = flags.config ?? configPathFromEnvironment();
  const replaced = configPath ?? path.join(dataDir, 'voicechat.env');
  let fileValues: Record<string, string> = {};
  if (flags.force && existsSync(replaced)) {
    try {
      fileValues = parseEnvFile(readFileSync(replaced, 'utf8'));
    } catch {
      // An unreadable old config is replaced anyway (--force); its values simply do not count.
    }
  }
  const s = layeredSettings(INIT_SETTINGS, { fileValues, flags: flagValues });
  const databaseUrl = s.databaseUrl;
  return {
    dataDir: plain(s.dataDir) ?? dataDir,
    configPath,
    databaseUrl: plain(databaseUrl),
    databaseUrlFile: databaseUrl && 'file' in databaseUrl ? databaseUrl.file : undefined,
    publicUrl: plain(s.publicUrl),
    port: plain(s.port),
    rtcPort: plain(s.rtcPort),
    registration: plain(s.registration) as Registration | undefined,
    force: flags.force,
  };
}

function plain(s: LayeredSetting | undefined): string | undefined {
  return s && 'value' in s ? s.value : undefined;
}

function readPasswordFile(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new CliError(`cannot read --admin-password-file ${file} (${(e as NodeJS.ErrnoException).code})`, EXIT.usage);
  }
  return text.split(/\r?\n/)[0] ?? '';
}

const check = (schema: typeof usernameSchema) => (value: string) => {
  const r = schema.safeParse(value);
  return r.success || (r.error.issues[0]?.message ?? 'invalid');
};

/** The interactive form: every answer defaults to the flag given (or the built-in default). */
async function ask(o: InitialiseOptions): Promise<InitialiseOptions> {
  const dataDir = await input({ message: 'Data directory', default: o.dataDir, required: true });
  const { configPath } = resolvePaths({ dataDir, configPath: o.configPath });
  const kind = await select({
    message: 'Database',
    default: o.databaseUrl && /^postgres(ql)?:/.test(o.databaseUrl) ? 'postgres' : 'sqlite',
    choices: [
      { name: `SQLite file in ${path.resolve(dataDir)} (no other service needed)`, value: 'sqlite' },
      { name: 'Postgres (give a postgres:// URL)', value: 'postgres' },
    ],
  });
  let databaseUrl: string | undefined;
  while (kind === 'postgres') {
    databaseUrl = await input({
      message: 'Postgres URL',
      default: o.databaseUrl,
      validate: (v) => /^postgres(ql)?:\/\//.test(v) || 'must start with postgres://',
    });
    try {
      await testDatabaseConnection(databaseUrl);
      break;
    } catch (e) {
      if (!(e instanceof SetupError)) throw e;
      process.stderr.write(`${e.message}; try again.\n`);
    }
  }
  const publicUrl = await input({
    message: 'Public URL (optional, e.g. https://chat.example.org)',
    default: o.publicUrl,
  });
  const port = Number(await input({ message: 'Port', default: String(o.port ?? 8080), validate: portCheck }));
  const rtcPort = Number(
    await input({ message: 'Media (RTC) port, UDP and TCP', default: String(o.rtcPort ?? 40000), validate: portCheck }),
  );
  const registration = await select<Registration>({
    message: 'Registration',
    default: o.registration ?? 'invite',
    choices: REGISTRATION.map((value) => ({ value, name: value })),
  });
  const username = await input({
    message: 'First admin username',
    default: o.admin?.username ?? 'admin',
    validate: check(usernameSchema),
  });
  let adminPassword = o.admin?.password;
  while (!adminPassword) {
    const first = await password({
      message: 'Admin password (8-128 characters)',
      mask: true,
      validate: check(passwordSchema),
    });
    const again = await password({ message: 'Repeat the password', mask: true });
    if (first === again) adminPassword = first;
    else process.stderr.write('The passwords differ; try again.\n');
  }
  return {
    ...o,
    dataDir,
    configPath,
    databaseUrl,
    // The answer replaces a URL kept in a file (VOICECHAT_DATABASE_URL_FILE): it is what was asked.
    databaseUrlFile: undefined,
    publicUrl: publicUrl || undefined,
    port,
    rtcPort,
    registration,
    admin: { username, password: adminPassword },
  };
}

function portCheck(v: string): true | string {
  const n = Number(v);
  return (Number.isInteger(n) && n >= 1 && n <= 65535) || 'must be a port number (1-65535)';
}
