/**
 * Changing the account email re-authenticates (issue 14 item 1): a stolen access token alone must
 * not redirect password resets. `display_name` alone needs nothing; with SMTP the old address is told.
 */
import { authenticator } from 'otplib';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { bearer, type Registered, register } from '../support/auth.js';
import { api } from '../support/factories.js';
import { type TestServer, useTestServer } from '../support/server.js';
import { type SmtpSink, startSmtpSink } from '../support/smtp-sink.js';

const codeAt = (secret: string, step: number) => authenticator.clone({ epoch: step * 30_000 }).generate(secret);

const emailOf = async (server: TestServer, id: string) => (await server.db('users').where({ id }).first()).email;

const patchMe = (server: TestServer, u: Registered, body: Record<string, unknown>) =>
  api(server, 'PATCH', '/auth/me', { ...bearer(u.access), body });

describe('PATCH /auth/me: email change needs the password (and MFA)', () => {
  const server = useTestServer({ VOICECHAT_RATE_LIMIT_SCALE: '100' });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('refuses an email change without or with a wrong password; display_name alone needs neither', async () => {
    const u = await register(server, { body: { email: 'owner@example.org' } });

    const nameOnly = await patchMe(server, u, { display_name: 'Only A Name' });
    expect(nameOnly.status).toBe(200);
    expect(nameOnly.body.display_name).toBe('Only A Name');

    const missing = await patchMe(server, u, { email: 'thief@example.net', display_name: 'Hijacked' });
    expect(missing.status).toBe(400);
    expect(missing.body.error.code).toBe('VALIDATION_FAILED');
    expect(missing.body.error.details[0].path).toBe('current_password');
    const wrong = await patchMe(server, u, { email: 'thief@example.net', current_password: 'not the password' });
    expect(wrong.status).toBe(401);
    expect(wrong.body.error.code).toBe('INVALID_CREDENTIALS');
    const removal = await patchMe(server, u, { email: null });
    expect(removal.status).toBe(400);
    // Nothing half-written: neither the email nor the display name sent with the refused change.
    const row = await server.db('users').where({ id: u.id }).first();
    expect(row.email).toBe('owner@example.org');
    expect(row.display_name).toBe('Only A Name');

    // Posting the unchanged address back is no change and needs nothing.
    const same = await patchMe(server, u, { email: 'owner@example.org', display_name: 'Same Mail' });
    expect(same.status).toBe(200);

    const ok = await patchMe(server, u, { email: 'new@example.org', current_password: u.password });
    expect(ok.status).toBe(200);
    expect(ok.body.email).toBe('new@example.org');
    expect(await emailOf(server, u.id)).toBe('new@example.org');
    const audits = await server.db('audit_log').where({ action: 'user.update', user_id: u.id }).select('metadata');
    expect(audits.map((a) => JSON.parse(a.metadata))).toContainEqual({ fields: ['email'], email_changed: true });
  });

  it('with MFA on, the change also needs a TOTP or backup code', async () => {
    const s0 = Math.floor(Date.now() / 30_000) + 1;
    vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true });
    vi.setSystemTime(s0 * 30_000 + 5_000);
    const u = await register(server, { body: { email: 'mfa@example.org' } });
    const setup = await api(server, 'POST', '/auth/mfa/setup', { ...bearer(u.access), body: { password: u.password } });
    const secret = setup.body.secret as string;
    const verified = await api(server, 'POST', '/auth/mfa/verify', {
      ...bearer(u.access),
      body: { code: codeAt(secret, s0) },
    });
    expect(verified.status).toBe(200);
    const backup = verified.body.backup_codes as string[];

    const noCode = await patchMe(server, u, { email: 'x1@example.net', current_password: u.password });
    expect(noCode.status).toBe(401);
    expect(noCode.body.error.code).toBe('MFA_REQUIRED');
    const badCode = await patchMe(server, u, {
      email: 'x1@example.net',
      current_password: u.password,
      mfa_code: codeAt(secret, s0 + 5),
    });
    expect(badCode.status).toBe(401);
    expect(badCode.body.error.code).toBe('INVALID_MFA_CODE');
    // A right code does not rescue a wrong password.
    const badPw = await patchMe(server, u, {
      email: 'x1@example.net',
      current_password: 'wrong password',
      mfa_code: codeAt(secret, s0 + 1),
    });
    expect(badPw.status).toBe(401);
    expect(badPw.body.error.code).toBe('INVALID_CREDENTIALS');
    expect(await emailOf(server, u.id)).toBe('mfa@example.org');

    const totp = await patchMe(server, u, {
      email: 'totp@example.org',
      current_password: u.password,
      mfa_code: codeAt(secret, s0 + 1),
    });
    expect(totp.status).toBe(200);
    expect(await emailOf(server, u.id)).toBe('totp@example.org');
    const viaBackup = await patchMe(server, u, {
      email: 'backup@example.org',
      current_password: u.password,
      mfa_code: backup[0],
    });
    expect(viaBackup.status).toBe(200);
    expect(await emailOf(server, u.id)).toBe('backup@example.org');
    // A backup code works once.
    const reused = await patchMe(server, u, {
      email: 'again@example.org',
      current_password: u.password,
      mfa_code: backup[0],
    });
    expect(reused.status).toBe(401);
    expect(await emailOf(server, u.id)).toBe('backup@example.org');
  });
});

describe('PATCH /auth/me with SMTP: the old address is told', () => {
  let smtp: SmtpSink;
  beforeAll(async () => {
    smtp = await startSmtpSink();
  });
  afterAll(async () => {
    await smtp?.close();
  });
  const server = useTestServer(() => ({
    VOICECHAT_SMTP_URL: smtp.url,
    VOICECHAT_SMTP_FROM: 'VoiceChat <noreply@chat.example.org>',
    VOICECHAT_RATE_LIMIT_SCALE: '100',
  }));

  it('mails the previous address (not the new one) after the change, and nothing on a refused one', async () => {
    const u = await register(server, { body: { email: 'before@example.org' } });
    expect((await patchMe(server, u, { email: 'after@example.net' })).status).toBe(400);
    expect((await patchMe(server, u, { display_name: 'No Mail For This' })).status).toBe(200);
    const ok = await patchMe(server, u, { email: 'after@example.net', current_password: u.password });
    expect(ok.status).toBe(200);
    await expect.poll(() => smtp.messages.length, { timeout: 5000 }).toBe(1);
    const mail = smtp.messages[0] as SmtpSink['messages'][number];
    expect(mail.to.join()).toContain('before@example.org');
    expect(mail.to.join()).not.toContain('after@example.net');
    const body = mail.data.replace(/=\r\n/g, '');
    expect(body).toMatch(/Subject: The email address of your VoiceChat account was changed/);
    expect(body).toContain(u.username);
    // The new address is not disclosed to the old one (it may be the attacker's).
    expect(body).not.toContain('after@example.net');
    // Give a stray second mail a moment to arrive: there must be none.
    await new Promise((r) => setTimeout(r, 300));
    expect(smtp.messages).toHaveLength(1);
  });
});
