import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, login, register } from '../support/auth.js';
import { api } from '../support/factories.js';
import { useTestServer } from '../support/server.js';
import { type SmtpSink, startSmtpSink } from '../support/smtp-sink.js';

describe('password reset by SMTP (VOICECHAT_SMTP_URL set)', () => {
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
    VOICECHAT_PUBLIC_URL: 'https://chat.example.org',
    VOICECHAT_RATE_LIMIT_SCALE: '100',
  }));

  it('mails a one-time link to the account email; the token resets the password once', async () => {
    const u = await register(server, { body: { email: 'owner@example.org' } });
    const noEmail = await register(server);
    for (const username of [u.username, noEmail.username, 'ghost_user']) {
      expect((await api(server, 'POST', '/auth/forgot-password', { body: { username } })).status).toBe(202);
    }
    await expect.poll(() => smtp.messages.length, { timeout: 5000 }).toBe(1);
    const mail = smtp.messages[0] as SmtpSink['messages'][number];
    expect(mail.to.join()).toContain('owner@example.org');
    const token = /reset-password#token=([A-Za-z0-9_-]+)/.exec(
      mail.data.replace(/=\r\n/g, '').replace(/=3D/g, '='),
    )?.[1];
    expect(token).toBeTruthy();
    const raw = JSON.stringify(await server.db('password_reset_tokens').select('*'));
    expect(raw).not.toContain(token);
    expect(server.logs.join('')).not.toContain(token);
    expect(
      (await api(server, 'POST', '/auth/reset-password', { body: { token, new_password: 'mailed reset pw' } })).status,
    ).toBe(204);
    expect((await api(server, 'GET', '/auth/me', bearer(u.access))).status).toBe(401);
    expect((await login(server, { username: u.username, password: 'mailed reset pw' })).status).toBe(200);
    expect(
      (await api(server, 'POST', '/auth/reset-password', { body: { token, new_password: 'again and again' } })).status,
    ).toBe(400);
    const audit = await server
      .db('audit_log')
      .where({ action: 'password.reset_request' })
      .select('user_id', 'metadata');
    expect(audit.find((r) => r.user_id === u.id)?.metadata).toContain('"delivery":"email"');
    expect(audit.find((r) => r.user_id === noEmail.id)?.metadata).toContain('no_email');
  });
});
