import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Init from '../../commands/init.js';
import Keygen from '../../commands/keygen.js';
import MigrateDown from '../../commands/migrate/down.js';
import MigrateStatus from '../../commands/migrate/status.js';
import MigrateUp from '../../commands/migrate/up.js';
import { loadConfig } from '../../src/config/index.js';
import { createDb, dbOptionsOf } from '../../src/db/knex.js';
import { migrationStatus } from '../../src/db/migrator.js';
import { ROOT, runCommand, spawnCli } from '../support/cli.js';
import { createTestDatabase, type TestDatabase, tempDir } from '../support/db.js';

const ADMIN_PASSWORD = 'Correct-Horse-Battery-9';

describe('CLI', () => {
  let dir: string;
  let database: TestDatabase;
  let configPath: string;
  let dbFlags: string[];
  const outputs: string[] = [];

  beforeAll(async () => {
    dir = tempDir('vc-cli-');
    // A fresh, empty database: `init` itself must apply the migrations.
    database = await createTestDatabase({ migrate: false });
    dbFlags = database.dialect === 'pg' ? ['--database-url', database.databaseUrl] : [];
    configPath = path.join(dir, 'etc', 'voicechat.env');
    writeFileSync(path.join(dir, 'pw.txt'), `${ADMIN_PASSWORD}\n`, { mode: 0o600 });
  });

  afterAll(async () => {
    await database?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  const initArgs = (databaseFlags = dbFlags) => [
    '--yes',
    '--config',
    configPath,
    '--data-dir',
    path.join(dir, 'data'),
    ...databaseFlags,
    '--public-url',
    'https://chat.example.org',
    '--port',
    '9123',
    '--registration',
    'closed',
    '--admin-username',
    'admin',
    '--admin-password-file',
    path.join(dir, 'pw.txt'),
  ];

  it('init --yes refuses bad input before writing anything', async () => {
    writeFileSync(path.join(dir, 'short.txt'), 'short\n');
    const bad = await runCommand(Init, [...initArgs().slice(0, -1), path.join(dir, 'short.txt')]);
    expect(bad.exit).not.toBe(0);
    expect(bad.stderr).toMatch(/^Error: admin password must be at least 8 characters\n$/);
    expect(existsSync(configPath)).toBe(false);
    expect(existsSync(path.join(dir, 'etc', 'keys.json'))).toBe(false);

    const unreachable = await runCommand(
      Init,
      initArgs(['--database-url', 'postgres://postgres:pw-not-shown@127.0.0.1:1/nothing']),
    );
    expect(unreachable.exit).not.toBe(0);
    expect(unreachable.stderr).toMatch(/cannot connect to the database/);
    expect(unreachable.stderr).not.toContain('pw-not-shown');
    expect(existsSync(configPath)).toBe(false);

    const noPassword = await runCommand(Init, ['--yes', '--config', configPath, '--admin-username', 'admin']);
    expect(noPassword.exit).toBe(2);
    expect(existsSync(configPath)).toBe(false);
  });

  it('init --yes writes config and keyring (0600), migrates and creates an Argon2id admin', async () => {
    const res = await runCommand(Init, initArgs());
    outputs.push(res.stdout, res.stderr);
    expect(res.exit, res.stderr).toBe(0);
    const keyringFile = path.join(dir, 'etc', 'keys.json');
    expect(statSync(configPath).mode & 0o777).toBe(0o600);
    expect(statSync(keyringFile).mode & 0o777).toBe(0o600);
    const keys = JSON.parse(readFileSync(keyringFile, 'utf8'));
    for (const purpose of ['jwt', 'mfa', 'megolm']) {
      // One active key and a staged next key (decrypt-only), so a first rotation needs no restart.
      expect(keys[purpose].map((k: { state: string }) => k.state)).toEqual(['active', 'decrypt-only']);
      expect(keys[purpose][0]).toMatchObject({ state: 'active', key: expect.stringMatching(/^[0-9a-f]{64}$/) });
    }
    const config = loadConfig({ configPath, env: {} });
    expect(config.port).toBe(9123);
    expect(config.registration).toBe('closed');
    expect(config.publicUrl).toBe('https://chat.example.org');
    expect(config.dialect).toBe(database.dialect);
    expect(config.keyringFile).toBe(keyringFile);

    const db = createDb(dbOptionsOf(config));
    try {
      const admin = await db('users').where({ username: 'admin' }).first();
      expect(Boolean(admin.is_admin)).toBe(true);
      expect(admin.password_hash).toMatch(/^\$argon2id\$v=19\$/);
      expect(admin.password_hash.split('$')[3]?.split(',').sort()).toEqual(['m=19456', 'p=1', 't=2']);
      expect(admin.password_hash).not.toContain(ADMIN_PASSWORD);
    } finally {
      await db.destroy();
    }
    // Nothing printed carries the password or a key.
    for (const text of [res.stdout, res.stderr]) {
      expect(text).not.toContain(ADMIN_PASSWORD);
      for (const purpose of ['jwt', 'mfa', 'megolm']) expect(text).not.toContain(keys[purpose][0].key);
    }
  });

  it('a second init --yes refuses and leaves the keyring untouched; --force is needed', async () => {
    const keyringFile = path.join(dir, 'etc', 'keys.json');
    const before = createHash('sha256').update(readFileSync(keyringFile)).digest('hex');
    const again = await runCommand(Init, initArgs());
    expect(again.exit).toBe(4);
    expect(again.stderr.trim().split('\n')).toHaveLength(1);
    expect(again.stderr).toMatch(/keyring .* already exists.*MFA secret.*--force/);
    expect(createHash('sha256').update(readFileSync(keyringFile)).digest('hex')).toBe(before);
  });

  it('migrate status after up shows nothing pending; down then status shows pending', async () => {
    const up = await runCommand(MigrateUp, ['--config', configPath, '--json']);
    expect(up.exit, up.stderr).toBe(0);
    expect(JSON.parse(up.stdout)).toEqual({ applied: [], pending: [] });

    const status = await runCommand(MigrateStatus, ['--config', configPath, '--json']);
    const s1 = JSON.parse(status.stdout);
    expect(s1.pending).toEqual([]);
    expect(s1.completed.length).toBeGreaterThan(0);
    const human = await runCommand(MigrateStatus, ['--config', configPath]);
    expect(human.stdout).toMatch(/Schema is current/);

    const refused = await runCommand(MigrateDown, ['--config', configPath]);
    expect(refused.exit).toBe(4); // no terminal, no --yes: destroys data, so refused
    const down = await runCommand(MigrateDown, ['--config', configPath, '--yes', '--all', '--json']);
    expect(down.exit, down.stderr).toBe(0);
    expect(JSON.parse(down.stdout).rolled_back).toEqual([...s1.completed].reverse());

    const after = JSON.parse((await runCommand(MigrateStatus, ['--config', configPath, '--json'])).stdout);
    expect(after.completed).toEqual([]);
    expect(after.pending).toEqual(s1.completed);
    const humanPending = await runCommand(MigrateStatus, ['--config', configPath]);
    expect(humanPending.stdout).toMatch(/pending {2}\d{14}_/);
    expect(humanPending.stdout).toMatch(/run `voicechat migrate up`/);

    const reapply = await runCommand(MigrateUp, ['--config', configPath]);
    expect(reapply.stdout).toMatch(/applied {2}\d{14}_/);
  });

  it('keygen prints 64 hex characters, a different key each time', async () => {
    const a = await runCommand(Keygen, []);
    const b = await runCommand(Keygen, []);
    expect(a.exit).toBe(0);
    expect(a.stdout).toMatch(/^[0-9a-f]{64}\n$/);
    expect(b.stdout).not.toBe(a.stdout);
    const json = JSON.parse((await runCommand(Keygen, ['--json'])).stdout);
    expect(json.key).toMatch(/^[0-9a-f]{64}$/);
  });

  it('keygen --purpose mfa --add appends a decrypt-only key and keeps the active one', async () => {
    const keyringFile = path.join(dir, 'etc', 'keys.json');
    const before = JSON.parse(readFileSync(keyringFile, 'utf8'));
    const res = await runCommand(Keygen, ['--purpose', 'mfa', '--add', '--config', configPath]);
    expect(res.exit, res.stderr).toBe(0);
    const id = res.stdout.trim();
    expect(id).toMatch(/^mfa_[0-9a-f]{8}$/);
    const after = JSON.parse(readFileSync(keyringFile, 'utf8'));
    expect(after.mfa).toHaveLength(before.mfa.length + 1);
    expect(after.mfa.slice(0, -1)).toEqual(before.mfa);
    expect(after.mfa.at(-1)).toMatchObject({ id, state: 'decrypt-only', key: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(after.jwt).toEqual(before.jwt);
    expect(res.stdout + res.stderr).not.toContain(after.mfa.at(-1).key);
    expect(statSync(keyringFile).mode & 0o777).toBe(0o600);

    const usage = await runCommand(Keygen, ['--add', '--config', configPath]);
    expect(usage.exit).toBe(2);
  });

  it('fails with one line and no stack trace unless --debug', async () => {
    const missing = path.join(dir, 'nope', 'voicechat.env');
    const plain = await spawnCli(['migrate', 'status', '--config', missing]);
    expect(plain.exit).toBe(3);
    expect(plain.stderr).toBe(`Error: Invalid configuration: config file ${missing} does not exist\n`);
    expect(plain.stdout).toBe('');
    const debug = await spawnCli(['migrate', 'status', '--config', missing, '--debug']);
    expect(debug.exit).toBe(3);
    expect(debug.stderr).toMatch(/\n\s+at /);

    const refused = await spawnCli(['init', '--yes', '--config', configPath]);
    expect(refused.exit).toBe(4);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    expect(refused.stderr).not.toMatch(/\s+at /);
  });
});

describe('init honours the environment (defaults < file < env < flags)', () => {
  let dir: string;
  let database: TestDatabase;
  let databaseUrl: string;

  beforeAll(async () => {
    dir = tempDir('vc-cli-env-');
    database = await createTestDatabase({ migrate: false });
    // SQLite: a file URL somewhere else than the data directory, so "ignored" cannot pass by accident.
    databaseUrl =
      database.dialect === 'pg' ? database.databaseUrl : `file://${path.join(database.dir, 'elsewhere.db')}`;
  });

  afterAll(async () => {
    await database?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('init --yes migrates the database VOICECHAT_DATABASE_URL names, flags beat env, and the hint is runnable', async () => {
    const configPath = path.join(dir, 'etc', 'voicechat.env');
    const res = await spawnCli(['init', '--yes', '--config', configPath, '--registration', 'open'], {
      cwd: ROOT,
      env: {
        VOICECHAT_DATABASE_URL: databaseUrl,
        VOICECHAT_DATA_DIR: path.join(dir, 'data'),
        VOICECHAT_PORT: '9555',
        VOICECHAT_REGISTRATION: 'closed',
      },
    });
    expect(res.exit, res.stderr).toBe(0);
    const config = loadConfig({ configPath, env: {} });
    expect(config.dialect).toBe(database.dialect);
    expect(config.dataDir).toBe(path.join(dir, 'data'));
    expect(config.port).toBe(9555);
    expect(config.registration).toBe('open');
    if (database.dialect === 'sqlite') expect(config.sqliteFile).toBe(path.join(database.dir, 'elsewhere.db'));
    // The database the environment named is migrated: `serve` with that config has nothing pending.
    const db = createDb(dbOptionsOf(config));
    try {
      const status = await migrationStatus(db);
      expect(status.pending).toEqual([]);
      expect(status.completed.length).toBeGreaterThan(0);
    } finally {
      await db.destroy();
    }
    expect(existsSync(path.join(dir, 'data', 'voicechat.db'))).toBe(false);
    // From a checkout, `voicechat` is not on PATH: the hint says npx.
    expect(res.stdout).toContain(`Start the server with: npx voicechat serve --config ${configPath}\n`);
    expect(res.stdout).not.toContain(databaseUrl);
  });

  it("--force keeps the replaced file's settings under env; a *_FILE secret stays a reference; hint outside a checkout", async () => {
    const configPath = path.join(dir, 'etc', 'voicechat.env');
    const urlFile = path.join(dir, 'database-url');
    writeFileSync(urlFile, `${databaseUrl}\n`, { mode: 0o600 });
    const elsewhere = tempDir('vc-cli-cwd-');
    try {
      const res = await spawnCli(['init', '--yes', '--force', '--config', configPath], {
        cwd: elsewhere,
        env: { VOICECHAT_DATABASE_URL_FILE: urlFile, VOICECHAT_RTC_PORT: '41000' },
      });
      expect(res.exit, res.stderr).toBe(0);
      const text = readFileSync(configPath, 'utf8');
      expect(text).toContain(`VOICECHAT_DATABASE_URL_FILE=${urlFile}`);
      expect(text).not.toContain(databaseUrl);
      const config = loadConfig({ configPath, env: {} });
      expect(config.databaseUrl).toBe(databaseUrl);
      expect(config.port).toBe(9555); // from the replaced file
      expect(config.registration).toBe('open'); // from the replaced file
      expect(config.rtcPort).toBe(41000); // from the environment
      expect(res.stdout).toContain(
        `Start the server with: node ${path.join(ROOT, 'bin', 'run.js')} serve --config ${configPath}\n`,
      );
    } finally {
      rmSync(elsewhere, { recursive: true, force: true });
    }
  });
});
