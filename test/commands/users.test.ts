/**
 * `voicechat users …` run in-process (oclif Config loaded from the project root, command classes'
 * `run`) against the same database as a live test server, whose HTTP API shows the effect.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Config } from '@oclif/core';
import { authenticator } from 'otplib';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import UsersCreate from '../../commands/users/create.js';
import UsersDisableMfa from '../../commands/users/disable-mfa.js';
import UsersList from '../../commands/users/list.js';
import UsersResetPassword from '../../commands/users/reset-password.js';
import UsersSetAdmin from '../../commands/users/set-admin.js';
import UsersUnlock from '../../commands/users/unlock.js';
import { verifyAuditChain } from '../../src/audit/verify.js';
import { bearer, login, register, uniqueName } from '../support/auth.js';
import { spawnCli } from '../support/cli.js';
import { api } from '../support/factories.js';
import { useTestServer } from '../support/server.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

describe('voicechat users', () => {
  const server = useTestServer({ VOICECHAT_RATE_LIMIT_SCALE: '100' });
  let oclif: Config;
  let configFile: string;

  beforeAll(async () => {
    oclif = await Config.load(root);
    configFile = path.join(server.database.dir, 'cli.env');
    writeFileSync(
      configFile,
      [
        `VOICECHAT_DATA_DIR=${server.database.dir}`,
        `VOICECHAT_DATABASE_URL=${server.database.databaseUrl}`,
        'VOICECHAT_PUBLIC_URL=https://chat.example.org',
        `VOICECHAT_KEYRING=${server.config.keyringFile}`,
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
  });

  /** Runs a command class, returning what it printed. */
  async function run(cmd: { run(argv: string[], config: Config): Promise<unknown> }, argv: string[]): Promise<string> {
    const out: string[] = [];
    // oclif's this.log goes through console.log.
    const spy = vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => {
      out.push(`${args.map(String).join(' ')}\n`);
    });
    const quiet = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      await cmd.run([...argv, '--config', configFile], oclif);
    } finally {
      spy.mockRestore();
      quiet.mockRestore();
    }
    return out.join('');
  }

  it('create (password file, admin, JSON) then log in over HTTP; a taken name fails', async () => {
    const username = uniqueName('cli');
    const pwFile = path.join(server.database.dir, 'pw.txt');
    writeFileSync(pwFile, 'cli created password\n', { mode: 0o600 });
    const out = JSON.parse(await run(UsersCreate, [username, '--password-file', pwFile, '--admin', '--json']));
    expect(out).toMatchObject({ username, is_admin: true });
    expect(out.password).toBeUndefined();
    const li = await login(server, { username, password: 'cli created password' });
    expect(li.status).toBe(200);
    expect(li.body.user.is_admin).toBe(true);
    await expect(run(UsersCreate, [username, '--password-file', pwFile])).rejects.toThrow(/taken/);
    await expect(run(UsersCreate, ['Bad-Name', '--password-file', pwFile])).rejects.toThrow(/not valid/);

    // Without a password file a strong one is generated and shown once.
    const gen = JSON.parse(await run(UsersCreate, [uniqueName('gen'), '--json']));
    expect(gen.password.length).toBeGreaterThanOrEqual(20);
    expect((await login(server, { username: gen.username, password: gen.password })).status).toBe(200);
  });

  it('list prints every user (table and JSON)', async () => {
    const u = await register(server);
    const json = JSON.parse(await run(UsersList, ['--json']));
    const me = json.find((x: { username: string }) => x.username === u.username);
    expect(me).toMatchObject({ id: u.id, is_admin: false, mfa_enabled: false, locked_until: null });
    expect(JSON.stringify(json)).not.toContain('password_hash');
    expect(await run(UsersList, [])).toContain(u.username);
  });

  it('unlock lifts a lockout', async () => {
    const u = await register(server);
    for (let i = 0; i < 10; i++) await login(server, { username: u.username, password: `bad guess ${i}` });
    expect((await login(server, { username: u.username, password: u.password })).body.error.code).toBe(
      'ACCOUNT_LOCKED',
    );
    expect(
      JSON.parse(await run(UsersList, ['--json'])).find((x: { id: string }) => x.id === u.id).locked_until,
    ).toBeTruthy();
    expect(await run(UsersUnlock, [u.username])).toContain('Unlocked');
    expect((await login(server, { username: u.username, password: u.password })).status).toBe(200);
  });

  it('reset-password prints a one-time token and link that reset the password over HTTP', async () => {
    const u = await register(server);
    const out = JSON.parse(await run(UsersResetPassword, [u.username, '--json']));
    expect(out.link).toBe(`https://chat.example.org/reset-password#token=${out.token}`);
    const text = await run(UsersResetPassword, [u.username]);
    const token = text.split('\n')[1] as string;
    expect(text).toContain('Link: https://chat.example.org/reset-password#token=');
    // Issuing a new token voided the first one.
    expect(
      (
        await api(server, 'POST', '/auth/reset-password', {
          body: { token: out.token, new_password: 'from the cli 1' },
        })
      ).status,
    ).toBe(400);
    expect(
      (await api(server, 'POST', '/auth/reset-password', { body: { token, new_password: 'from the cli 1' } })).status,
    ).toBe(204);
    expect((await api(server, 'GET', '/auth/me', bearer(u.access))).status).toBe(401);
    expect((await login(server, { username: u.username, password: 'from the cli 1' })).status).toBe(200);
    const raw = JSON.stringify(await server.db('password_reset_tokens').select('*'));
    expect(raw).not.toContain(token);
  });

  it('disable-mfa turns MFA off; set-admin grants and revokes', async () => {
    const u = await register(server);
    const setup = await api(server, 'POST', '/auth/mfa/setup', { ...bearer(u.access), body: { password: u.password } });
    await api(server, 'POST', '/auth/mfa/verify', {
      ...bearer(u.access),
      body: { code: authenticator.generate(setup.body.secret) },
    });
    expect((await login(server, { username: u.username, password: u.password })).body.error.code).toBe('MFA_REQUIRED');
    expect(JSON.parse(await run(UsersDisableMfa, [u.username, '--json']))).toMatchObject({ was_enabled: true });
    expect((await login(server, { username: u.username, password: u.password })).status).toBe(200);

    await run(UsersSetAdmin, [u.username]);
    expect((await api(server, 'GET', '/auth/me', bearer(u.access))).body.is_admin).toBe(true);
    await run(UsersSetAdmin, [u.username, '--revoke']);
    expect((await api(server, 'GET', '/auth/me', bearer(u.access))).body.is_admin).toBe(false);
  });

  it('unknown users fail with a one-line reason and the not-found exit code', async () => {
    for (const cmd of [UsersUnlock, UsersDisableMfa, UsersSetAdmin, UsersResetPassword]) {
      const err = await run(cmd, ['no_such_user']).then(
        () => undefined,
        (e: Error & { oclif?: { exit?: number } }) => e,
      );
      expect(err?.message).toMatch(/No user named "no_such_user"/);
      expect(err?.message).not.toContain('\n');
      expect(err?.oclif?.exit).toBe(5);
    }
  });

  it('runs as a real process through bin/dev.js (exit codes, one-line failure)', async () => {
    const u = await register(server);
    const ok = await spawnCli(['users', 'reset-password', u.username, '--json', '--config', configFile]);
    expect(ok.exit).toBe(0);
    const out = JSON.parse(ok.stdout);
    expect(out.link).toContain('https://chat.example.org/reset-password#token=');
    expect(
      (
        await api(server, 'POST', '/auth/reset-password', {
          body: { token: out.token, new_password: 'via the process' },
        })
      ).status,
    ).toBe(204);
    const missing = await spawnCli(['users', 'unlock', 'no_such_user', '--config', configFile]);
    expect(missing.exit).toBe(5);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
    expect(missing.stderr).toContain('No user named');
  }, 30_000);

  it('every command is audited as admin.* and the chain verifies', async () => {
    const actions = new Set(
      (await server.db('audit_log').where('action', 'like', 'admin.%').select('action')).map((r) => r.action),
    );
    for (const a of [
      'admin.user_create',
      'admin.users_list',
      'admin.unlock',
      'admin.password_reset',
      'admin.mfa_disable',
      'admin.set_admin',
    ]) {
      expect(actions.has(a), a).toBe(true);
    }
    expect((await verifyAuditChain(server.db)).ok).toBe(true);
  });
});
