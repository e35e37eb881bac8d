import { authenticator } from 'otplib';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { bearer, login, register, sidOf } from '../support/auth.js';
import { api } from '../support/factories.js';
import { useTestServer } from '../support/server.js';

/** The code for a time step, computed by otplib in the test, independently of the server. */
const codeAt = (secret: string, step: number) => authenticator.clone({ epoch: step * 30_000 }).generate(secret);

describe('TOTP MFA', () => {
  const secrets = new Set<string>();
  const server = useTestServer({ VOICECHAT_RATE_LIMIT_SCALE: '100' });
  afterEach(() => {
    vi.useRealTimers();
  });

  /** Pins the clock (server and test share the process) 5 s into a step, so no boundary is crossed. */
  function pinClock(): number {
    const s0 = Math.floor(Date.now() / 30_000) + 1;
    vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true });
    vi.setSystemTime(s0 * 30_000 + 5_000);
    return s0;
  }

  async function enable(u: Awaited<ReturnType<typeof register>>, step: number) {
    const setup = await api(server, 'POST', '/auth/mfa/setup', { ...bearer(u.access), body: { password: u.password } });
    expect(setup.status).toBe(200);
    expect(setup.body.otpauth_uri).toContain(`secret=${setup.body.secret}`);
    const secret = setup.body.secret as string;
    const verified = await api(server, 'POST', '/auth/mfa/verify', {
      ...bearer(u.access),
      body: { code: codeAt(secret, step) },
    });
    expect(verified.status).toBe(200);
    secrets.add(secret);
    for (const c of verified.body.backup_codes) secrets.add(c);
    return { secret, backup: verified.body.backup_codes as string[] };
  }

  it('setup needs the password; verify needs a right code; then login needs a code', async () => {
    const s0 = pinClock();
    const u = await register(server);
    const noPw = await api(server, 'POST', '/auth/mfa/setup', { ...bearer(u.access), body: { password: 'wrong one' } });
    expect(noPw.status).toBe(401);
    const setup = await api(server, 'POST', '/auth/mfa/setup', { ...bearer(u.access), body: { password: u.password } });
    const secret = setup.body.secret as string;
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    const row = await server.db('users').where({ id: u.id }).first();
    expect(row.mfa_enabled).toBeFalsy();
    expect(row.mfa_pending_secret).toMatch(/^v1\.mfa_[0-9a-f]{8}\./);
    const wrong = await api(server, 'POST', '/auth/mfa/verify', {
      ...bearer(u.access),
      body: { code: codeAt(secret, s0 + 3) },
    });
    expect(wrong.status).toBe(401);
    expect(wrong.body.error.code).toBe('INVALID_MFA_CODE');
    // The previous step is accepted at verification.
    const ok = await api(server, 'POST', '/auth/mfa/verify', {
      ...bearer(u.access),
      body: { code: codeAt(secret, s0 - 1) },
    });
    expect(ok.status).toBe(200);
    expect(ok.body.backup_codes).toHaveLength(10);
    expect(new Set(ok.body.backup_codes).size).toBe(10);
    secrets.add(secret);
    for (const c of ok.body.backup_codes) secrets.add(c);

    const none = await login(server, { username: u.username, password: u.password });
    expect(none.status).toBe(401);
    expect(none.body.error.code).toBe('MFA_REQUIRED');
    // Two steps ahead: refused by the window (the replay guard only knows step s0-1).
    const far = await login(server, { username: u.username, password: u.password, mfa_code: codeAt(secret, s0 + 2) });
    expect(far.status).toBe(401);
    expect(far.body.error.code).toBe('INVALID_MFA_CODE');
    const current = await login(server, { username: u.username, password: u.password, mfa_code: codeAt(secret, s0) });
    expect(current.status).toBe(200);
    const replay = await login(server, { username: u.username, password: u.password, mfa_code: codeAt(secret, s0) });
    expect(replay.status).toBe(401);
    expect(replay.body.error.code).toBe('INVALID_MFA_CODE');
    const next = await login(server, { username: u.username, password: u.password, mfa_code: codeAt(secret, s0 + 1) });
    expect(next.status).toBe(200);
    const back = await login(server, { username: u.username, password: u.password, mfa_code: codeAt(secret, s0 - 1) });
    expect(back.status).toBe(401);
    // A wrong password with a right code is still INVALID_CREDENTIALS.
    const pw = await login(server, {
      username: u.username,
      password: 'not it at all',
      mfa_code: codeAt(secret, s0 + 1),
    });
    expect(pw.body.error.code).toBe('INVALID_CREDENTIALS');
    // Wrong codes count as failed logins for the lockout.
    // (The successful logins reset the counter; `back` and `pw` failed after them.)
    expect(Number((await server.db('users').where({ id: u.id }).first()).failed_login_count)).toBe(2);
  });

  it('verification refuses codes two steps in the past or future, accepts the current one', async () => {
    const s0 = pinClock();
    const u = await register(server);
    const setup = await api(server, 'POST', '/auth/mfa/setup', { ...bearer(u.access), body: { password: u.password } });
    const secret = setup.body.secret as string;
    for (const step of [s0 - 2, s0 + 2, s0 - 10]) {
      const r = await api(server, 'POST', '/auth/mfa/verify', {
        ...bearer(u.access),
        body: { code: codeAt(secret, step) },
      });
      expect(r.status).toBe(401);
      expect(r.body.error.code).toBe('INVALID_MFA_CODE');
    }
    const ok = await api(server, 'POST', '/auth/mfa/verify', {
      ...bearer(u.access),
      body: { code: codeAt(secret, s0) },
    });
    expect(ok.status).toBe(200);
    secrets.add(secret);
    for (const c of ok.body.backup_codes) secrets.add(c);
  });

  it('backup codes work once, can be regenerated (old set void), and MFA can be disabled', async () => {
    const s0 = pinClock();
    const u = await register(server);
    const { secret, backup } = await enable(u, s0);
    const withBackup = await login(server, {
      username: u.username,
      password: u.password,
      mfa_code: backup[0] as string,
    });
    expect(withBackup.status).toBe(200);
    const again = await login(server, { username: u.username, password: u.password, mfa_code: backup[0] as string });
    expect(again.status).toBe(401);
    expect(again.body.error.code).toBe('INVALID_MFA_CODE');
    // Formatting is forgiving (case, dashes), the code is not.
    const upper = (backup[1] as string).toUpperCase().replace(/-/g, '');
    expect((await login(server, { username: u.username, password: u.password, mfa_code: upper })).status).toBe(200);

    const regenWrong = await api(server, 'POST', '/auth/mfa/backup-codes', {
      ...bearer(u.access),
      body: { password: u.password, code: '000000' },
    });
    expect(regenWrong.status).toBe(401);
    const regen = await api(server, 'POST', '/auth/mfa/backup-codes', {
      ...bearer(u.access),
      body: { password: u.password, code: codeAt(secret, s0 + 1) },
    });
    expect(regen.status).toBe(200);
    expect(regen.body.backup_codes).toHaveLength(10);
    for (const c of regen.body.backup_codes) secrets.add(c);
    expect(
      (await login(server, { username: u.username, password: u.password, mfa_code: backup[2] as string })).status,
    ).toBe(401);
    expect(
      (await login(server, { username: u.username, password: u.password, mfa_code: regen.body.backup_codes[0] }))
        .status,
    ).toBe(200);

    const disableNoCode = await api(server, 'POST', '/auth/mfa/disable', {
      ...bearer(u.access),
      body: { password: u.password, code: codeAt(secret, s0 + 1) }, // replayed step
    });
    expect(disableNoCode.status).toBe(401);
    const disable = await api(server, 'POST', '/auth/mfa/disable', {
      ...bearer(u.access),
      body: { password: u.password, code: regen.body.backup_codes[1] },
    });
    expect(disable.status).toBe(204);
    expect((await login(server, { username: u.username, password: u.password })).status).toBe(200);
    const row = await server.db('users').where({ id: u.id }).first();
    expect(row.mfa_secret).toBeNull();
    expect(await server.db('mfa_backup_codes').where({ user_id: u.id })).toHaveLength(0);
    const actions = (await server.db('audit_log').where({ user_id: u.id }).select('action')).map((r) => r.action);
    expect(actions).toEqual(expect.arrayContaining(['mfa.enable', 'mfa.backup_codes', 'mfa.disable']));
  });

  it('a password reset keeps MFA on: the next login still needs a code', async () => {
    const s0 = pinClock();
    const u = await register(server);
    const { secret } = await enable(u, s0);
    const { issuePasswordResetToken } = await import('../../src/auth/password-reset.js');
    const { token } = await issuePasswordResetToken(server.db, u.id, { action: 'admin.password_reset' });
    expect(
      (await api(server, 'POST', '/auth/reset-password', { body: { token, new_password: 'after the reset' } })).status,
    ).toBe(204);
    const li = await login(server, { username: u.username, password: 'after the reset' });
    expect(li.body.error.code).toBe('MFA_REQUIRED');
    const ok = await login(server, {
      username: u.username,
      password: 'after the reset',
      mfa_code: codeAt(secret, s0 + 1),
    });
    expect(ok.status).toBe(200);
  });

  it('secrets are only ciphertext at rest, bound to their user: a moved ciphertext does not decrypt', async () => {
    const s0 = pinClock();
    const a = await register(server);
    const b = await register(server);
    const { secret: secretA } = await enable(a, s0);
    const { secret: secretB } = await enable(b, s0);
    const rows = await server.db('users').whereIn('id', [a.id, b.id]).select('*');
    const raw = JSON.stringify(rows) + JSON.stringify(await server.db('mfa_backup_codes').select('*'));
    for (const s of secrets) expect(raw.includes(s), 'a secret or backup code is stored in clear').toBe(false);
    const rowA = rows.find((r) => r.id === a.id);
    expect(rowA.mfa_secret).toMatch(/^v1\./);
    expect(server.keyring.open('mfa', rowA.mfa_secret, `mfa:${a.id}`).toString()).toBe(secretA);
    expect(() => server.keyring.open('mfa', rowA.mfa_secret, `mfa:${b.id}`)).toThrow();

    // Copy A's ciphertext into B's row: B's login with A's codes (or B's) fails, nothing decrypts.
    await server.db('users').where({ id: b.id }).update({ mfa_secret: rowA.mfa_secret, mfa_last_step: null });
    const moved = await login(server, {
      username: b.username,
      password: b.password,
      mfa_code: codeAt(secretA, s0 + 1),
    });
    expect(moved.status).toBe(401);
    expect(moved.body.error.code).toBe('INVALID_MFA_CODE');
    const own = await login(server, { username: b.username, password: b.password, mfa_code: codeAt(secretB, s0 + 1) });
    expect(own.status).toBe(401);
    expect(server.logs.join('')).toContain('MFA secret cannot be decrypted');
  });

  it('no TOTP secret, backup code or session token in the logs', async () => {
    const logs = server.logs.join('\n');
    expect(secrets.size).toBeGreaterThan(20);
    for (const s of secrets) expect(logs.includes(s)).toBe(false);
    expect(sidOf).toBeTypeOf('function');
  });
});
