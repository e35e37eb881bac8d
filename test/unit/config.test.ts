import { chmodSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { configCandidates, loadConfig } from '../../src/config/index.js';
import { ConfigError } from '../../src/errors.js';
import { tempDir } from '../support/db.js';

const dir = tempDir('vc-config-');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, text, { mode: 0o600 });
  return file;
}

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error('expected a ConfigError');
}

describe('configuration loading', () => {
  it('applies defaults < file < environment (and *_FILE) < flags', () => {
    const file = write(
      'precedence.env',
      'VOICECHAT_PORT=7001\nVOICECHAT_REGISTRATION=open\nVOICECHAT_LOG_LEVEL=warn\n',
    );
    const defaults = loadConfig({ env: {}, cwd: dir, configPath: write('empty.env', '# nothing\n') });
    expect(defaults.port).toBe(8080);
    expect(defaults.registration).toBe('invite');
    expect(defaults.dialect).toBe('sqlite');

    const fromFile = loadConfig({ env: {}, cwd: dir, configPath: file });
    expect(fromFile.port).toBe(7001);
    expect(fromFile.registration).toBe('open');

    const fromEnv = loadConfig({ env: { VOICECHAT_PORT: '7002' }, cwd: dir, configPath: file });
    expect(fromEnv.port).toBe(7002);
    expect(fromEnv.registration).toBe('open'); // untouched by env: file value stays

    const secretFile = write('level.txt', 'debug\n');
    const fromEnvFile = loadConfig({ env: { VOICECHAT_LOG_LEVEL_FILE: secretFile }, cwd: dir, configPath: file });
    expect(fromEnvFile.logLevel).toBe('debug');

    const fromFlag = loadConfig({ env: { VOICECHAT_PORT: '7002' }, cwd: dir, configPath: file, flags: { port: 7003 } });
    expect(fromFlag.port).toBe(7003);
  });

  it('reads secrets from *_FILE (env wins over the file variable)', () => {
    const key = 'ab'.repeat(32);
    const keyFile = write('jwt.key', `${key}\n`);
    expect(loadConfig({ env: { JWT_SECRET_FILE: keyFile }, cwd: dir, configPath: write('e.env', '') }).jwtSecret).toBe(
      key,
    );
    const direct = 'cd'.repeat(32);
    expect(
      loadConfig({ env: { JWT_SECRET_FILE: keyFile, JWT_SECRET: direct }, cwd: dir, configPath: write('e2.env', '') })
        .jwtSecret,
    ).toBe(direct);
  });

  it('reports every bad setting in one error, each by name', () => {
    const file = write('bad.env', 'VOICECHAT_PORT=notaport\nVOICECHAT_REGISTRATION=everyone\n');
    const err = configError(() =>
      loadConfig({
        env: { VOICECHAT_UPLOAD_MAX_BYTES: '999999999999', VOICECHAT_PUBLIC_URL: 'ftp://x' },
        cwd: dir,
        configPath: file,
      }),
    );
    expect(err.problems).toHaveLength(4);
    for (const name of [
      'VOICECHAT_PORT',
      'VOICECHAT_REGISTRATION',
      'VOICECHAT_UPLOAD_MAX_BYTES',
      'VOICECHAT_PUBLIC_URL',
    ]) {
      expect(err.message).toContain(name);
    }
    expect(err.message).toMatch(/^Invalid configuration \(4 problems\)/);
  });

  it('never echoes a bad secret value', () => {
    const secrets = {
      JWT_SECRET: 'hunter2-not-hex-at-all-but-secret',
      MFA_ENCRYPTION_KEY: 'ab'.repeat(31), // 62 hex chars: wrong length
      MEGOLM_ENCRYPTION_KEY: `${'ef'.repeat(32)}ff`,
      REDIS_URL: 'http://user:pa55word@redis.example',
      VOICECHAT_DATABASE_URL: 'mysql://root:t0psecret@db',
    };
    const err = configError(() => loadConfig({ env: secrets, cwd: dir, configPath: write('s.env', '') }));
    expect(err.problems).toHaveLength(5);
    for (const [name, value] of Object.entries(secrets)) {
      expect(err.message).toContain(name);
      expect(err.message).not.toContain(value);
    }
    expect(err.message).not.toContain('pa55word');
    expect(err.message).not.toContain('t0psecret');
  });

  it('refuses a named config file that does not exist, and TLS half-configured', () => {
    expect(() => loadConfig({ env: {}, cwd: dir, configPath: path.join(dir, 'nope.env') })).toThrow(/does not exist/);
    expect(() =>
      loadConfig({ env: { VOICECHAT_TLS_CERT: '/x.pem' }, cwd: dir, configPath: write('t.env', '') }),
    ).toThrow(/VOICECHAT_TLS_CERT and VOICECHAT_TLS_KEY/);
  });

  it('refuses a heartbeat whose idle timeout uWS cannot hold (it would abort the process)', () => {
    const load = (ms: string) =>
      loadConfig({ env: { VOICECHAT_GATEWAY_HEARTBEAT_MS: ms }, cwd: dir, configPath: write('h.env', '') });
    expect(load('478000').gatewayHeartbeatMs).toBe(478000);
    expect(() => load('480000')).toThrow(/VOICECHAT_GATEWAY_HEARTBEAT_MS/);
  });

  it('looks the config up in the documented order and puts the keyring beside it', () => {
    expect(configCandidates({ env: {}, cwd: '/srv' })).toEqual([
      '/srv/data/voicechat.env',
      '/etc/voicechat/voicechat.env',
    ]);
    expect(configCandidates({ env: { VOICECHAT_DATA_DIR: '/var/lib/vc' }, cwd: '/srv' })[0]).toBe(
      '/var/lib/vc/voicechat.env',
    );
    expect(configCandidates({ env: { VOICECHAT_CONFIG: 'x.env' }, cwd: '/srv' })).toEqual(['/srv/x.env']);
    expect(configCandidates({ configPath: '/a/b.env', env: { VOICECHAT_CONFIG: 'x.env' } })).toEqual(['/a/b.env']);
    const cfg = loadConfig({ env: {}, cwd: dir, configPath: write('k.env', '') });
    expect(cfg.keyringFile).toBe(path.join(dir, 'keys.json'));
    const pg = loadConfig({
      env: { VOICECHAT_DATABASE_URL: 'postgres://u@h/db' },
      cwd: dir,
      configPath: write('p.env', ''),
    });
    expect(pg.dialect).toBe('pg');
  });

  it('refuses a config file others can read or write (it may hold secrets), naming path and mode', () => {
    const file = write('open.env', 'VOICECHAT_PORT=9000\n');
    for (const mode of [0o644, 0o604, 0o602, 0o601, 0o666]) {
      chmodSync(file, mode);
      const err = configError(() => loadConfig({ env: {}, cwd: dir, configPath: file }));
      expect(err.message).toContain(`config file ${file} is accessible by others (mode ${mode.toString(8)})`);
    }
    for (const mode of [0o600, 0o640, 0o400]) {
      chmodSync(file, mode);
      expect(loadConfig({ env: {}, cwd: dir, configPath: file }).port).toBe(9000);
    }
  });
});
