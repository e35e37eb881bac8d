import { describe, expect, it } from 'vitest';
import { verifyAuditChain } from '../../src/audit/verify.js';
import { hashToken } from '../../src/crypto/random.js';
import type { BusMessage } from '../../src/events/bus.js';
import { newId, nowMs } from '../../src/ids.js';
import { bearer, login, PASSWORD, register, sidOf, uniqueName } from '../support/auth.js';
import { api, createUser } from '../support/factories.js';
import { startTestServer, useTestServer } from '../support/server.js';

describe('accounts over HTTP', () => {
  /** Every secret a client received or sent; none may appear in the logs or raw rows. */
  const secrets = new Set<string>();
  const server = useTestServer({ VOICECHAT_RATE_LIMIT_SCALE: '100' });
  const keep = (...s: (string | undefined)[]) => {
    for (const x of s) if (x) secrets.add(x);
  };

  it('registers, logs in, reads and patches the profile', async () => {
    const username = uniqueName('flow');
    const res = await api(server, 'POST', '/auth/register', {
      body: { username, password: PASSWORD, email: 'flow@example.org', display_name: 'Flow' },
    });
    expect(res.status).toBe(201);
    expect(Object.keys(res.body).sort()).toEqual(['access_token', 'expires_in', 'refresh_token', 'user']);
    expect(res.body.user).toMatchObject({
      username,
      email: 'flow@example.org',
      display_name: 'Flow',
      mfa_enabled: false,
    });
    expect(res.body.expires_in).toBe(900);
    expect(res.headers.get('set-cookie')).toBeNull();
    keep(PASSWORD, res.body.access_token, res.body.refresh_token);

    const dup = await api(server, 'POST', '/auth/register', { body: { username, password: PASSWORD } });
    expect(dup.status).toBe(409);
    expect(dup.body.error.code).toBe('CONFLICT');

    const li = await login(server, { username, password: PASSWORD });
    expect(li.status).toBe(200);
    expect(li.body.user.username).toBe(username);
    expect(li.headers.get('set-cookie')).toBeNull();
    // A new session (no fixation): different tokens and a different sid than at registration.
    expect(li.body.refresh_token).not.toBe(res.body.refresh_token);
    keep(li.body.access_token, li.body.refresh_token);

    const me = await api(server, 'GET', '/auth/me', bearer(li.body.access_token));
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ id: res.body.user.id, username, is_admin: false });
    expect(me.body.password_hash).toBeUndefined();

    const patched = await api(server, 'PATCH', '/auth/me', {
      ...bearer(li.body.access_token),
      body: { display_name: 'Renamed', email: null, current_password: PASSWORD },
    });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ display_name: 'Renamed', email: null });
    const update = await server.db('audit_log').where({ action: 'user.update', user_id: res.body.user.id }).first();
    expect(JSON.parse(update.metadata)).toEqual({ fields: ['display_name', 'email'], email_changed: true });
    const badEmail = await api(server, 'PATCH', '/auth/me', {
      ...bearer(li.body.access_token),
      body: { email: 'not-an-email' },
    });
    expect(badEmail.status).toBe(400);
    expect(badEmail.body.error.details[0].path).toBe('email');
    const unknownField = await api(server, 'PATCH', '/auth/me', {
      ...bearer(li.body.access_token),
      body: { is_admin: true },
    });
    expect(unknownField.status).toBe(400);
    expect((await server.db('users').where({ username }).first()).is_admin).toBeFalsy();
  });

  it('validates registration input with the documented rules', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ username: 'Ab', password: PASSWORD }, 'username'],
      [{ username: 'user-name', password: PASSWORD }, 'username'],
      [{ username: uniqueName(), password: 'short' }, 'password'],
      [{ username: uniqueName(), password: 'x'.repeat(129) }, 'password'],
      [{ username: uniqueName(), password: PASSWORD, email: 'user@domain' }, 'email'],
    ];
    for (const [body, path] of cases) {
      const res = await api(server, 'POST', '/auth/register', { body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.code).toBe('VALIDATION_FAILED');
      expect(res.body.error.details.map((d: { path: string }) => d.path)).toContain(path);
    }
    const ok = await api(server, 'POST', '/auth/register', {
      body: { username: uniqueName(), password: 'x'.repeat(128) },
    });
    expect(ok.status).toBe(201);
  });

  it('records IP and a user agent truncated to 512 characters', async () => {
    const ua = `agent/${'x'.repeat(700)}`;
    const u = await register(server, { headers: { 'user-agent': ua } });
    const list = await api(server, 'GET', '/auth/sessions', { headers: { ...u.headers, 'user-agent': ua } });
    expect(list.status).toBe(200);
    expect(list.body).toHaveLength(1);
    expect(list.body[0]).toMatchObject({ current: true, ip_address: '127.0.0.1' });
    expect(Array.from(list.body[0].user_agent as string)).toHaveLength(512);
    expect(ua.startsWith(list.body[0].user_agent)).toBe(true);
    expect(list.body[0].created_at).toMatch(/Z$/);
    expect(list.body[0].last_used_at).toMatch(/Z$/);
  });

  it('rotates refresh tokens; a reused one revokes the whole family', async () => {
    const u = await register(server);
    const r1 = await api(server, 'POST', '/auth/refresh', { body: { refresh_token: u.refresh } });
    expect(r1.status).toBe(200);
    expect(Object.keys(r1.body).sort()).toEqual(['access_token', 'expires_in', 'refresh_token']);
    expect(r1.body.refresh_token).not.toBe(u.refresh);
    keep(u.refresh, r1.body.refresh_token, r1.body.access_token);
    // Same family: the session list still shows one session, with the family id as sid.
    const list = await api(server, 'GET', '/auth/sessions', bearer(r1.body.access_token));
    expect(list.body).toHaveLength(1);

    const r2 = await api(server, 'POST', '/auth/refresh', { body: { refresh_token: r1.body.refresh_token } });
    expect(r2.status).toBe(200);

    const replay = await api(server, 'POST', '/auth/refresh', { body: { refresh_token: u.refresh } });
    expect(replay.status).toBe(401);
    expect(replay.body.error.code).toBe('TOKEN_REUSED');
    // The newest token of the family is dead too, and so are its access tokens, at once.
    const after = await api(server, 'POST', '/auth/refresh', { body: { refresh_token: r2.body.refresh_token } });
    expect(after.status).toBe(401);
    const me = await api(server, 'GET', '/auth/me', bearer(r2.body.access_token));
    expect(me.status).toBe(401);
    const audit = await server.db('audit_log').where({ action: 'auth.token_reused', user_id: u.id });
    expect(audit).toHaveLength(1);

    const garbage = await api(server, 'POST', '/auth/refresh', { body: { refresh_token: 'nope' } });
    expect(garbage.status).toBe(401);
    expect(garbage.body.error.code).toBe('UNAUTHENTICATED');
  });

  it('concurrent refreshes with one token: exactly one wins', async () => {
    const u = await register(server);
    const results = await Promise.all(
      Array.from({ length: 4 }, () => api(server, 'POST', '/auth/refresh', { body: { refresh_token: u.refresh } })),
    );
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    expect(results.filter((r) => r.status === 401)).toHaveLength(3);
  });

  it('logout ends the current session; logout one and logout-all', async () => {
    const u = await register(server);
    await api(server, 'POST', '/auth/logout', { ...bearer(u.access), body: {} }).then((r) =>
      expect(r.status).toBe(204),
    );
    expect((await api(server, 'GET', '/auth/me', bearer(u.access))).status).toBe(401);
    expect((await api(server, 'POST', '/auth/refresh', { body: { refresh_token: u.refresh } })).status).toBe(401);

    const a = await login(server, { username: u.username, password: u.password });
    const b = await login(server, { username: u.username, password: u.password });
    const c = await login(server, { username: u.username, password: u.password });
    const list = await api(server, 'GET', '/auth/sessions', bearer(a.body.access_token));
    expect(list.body).toHaveLength(3);
    const bSid = sidOf(b.body.access_token);
    const one = await api(server, 'DELETE', `/auth/sessions/${bSid}`, bearer(a.body.access_token));
    expect(one.status).toBe(204);
    expect((await api(server, 'GET', '/auth/me', bearer(b.body.access_token))).status).toBe(401);
    expect((await api(server, 'GET', '/auth/me', bearer(a.body.access_token))).status).toBe(200);

    // Another user's session id is not found, and stays alive.
    const other = await register(server);
    const otherSid = sidOf(other.access);
    expect((await api(server, 'DELETE', `/auth/sessions/${otherSid}`, bearer(a.body.access_token))).status).toBe(404);
    expect((await api(server, 'GET', '/auth/me', other)).status).toBe(200);

    const all = await api(server, 'DELETE', '/auth/sessions', bearer(c.body.access_token));
    expect(all.status).toBe(204);
    for (const t of [a, c]) {
      expect((await api(server, 'GET', '/auth/me', bearer(t.body.access_token))).status).toBe(401);
      expect(
        (await api(server, 'POST', '/auth/refresh', { body: { refresh_token: t.body.refresh_token } })).status,
      ).toBe(401);
    }
    // Logout with only a refresh token (access token gone).
    const d = await login(server, { username: u.username, password: u.password });
    const viaRefresh = await api(server, 'POST', '/auth/logout', { body: { refresh_token: d.body.refresh_token } });
    expect(viaRefresh.status).toBe(204);
    expect((await api(server, 'GET', '/auth/me', bearer(d.body.access_token))).status).toBe(401);
    const actions = (await server.db('audit_log').where({ user_id: u.id }).select('action')).map((r) => r.action);
    expect(actions).toEqual(expect.arrayContaining(['auth.logout', 'auth.logout_all', 'auth.login', 'user.register']));
  });

  it('password change needs the current password and revokes every other session', async () => {
    const u = await register(server);
    const other = await login(server, { username: u.username, password: u.password });
    const wrong = await api(server, 'POST', '/auth/me/password', {
      ...bearer(u.access),
      body: { current_password: 'wrong password!', new_password: 'a brand new secret' },
    });
    expect(wrong.status).toBe(401);
    expect(wrong.body.error.code).toBe('INVALID_CREDENTIALS');
    const ok = await api(server, 'POST', '/auth/me/password', {
      ...bearer(u.access),
      body: { current_password: u.password, new_password: 'a brand new secret' },
    });
    expect(ok.status).toBe(204);
    keep('a brand new secret');
    expect((await api(server, 'GET', '/auth/me', bearer(u.access))).status).toBe(200);
    expect((await api(server, 'GET', '/auth/me', bearer(other.body.access_token))).status).toBe(401);
    expect((await login(server, { username: u.username, password: u.password })).status).toBe(401);
    expect((await login(server, { username: u.username, password: 'a brand new secret' })).status).toBe(200);
    expect(await server.db('audit_log').where({ action: 'password.change', user_id: u.id })).toHaveLength(1);
  });

  it('forgot-password answers 202 for anyone; a reset token works once and revokes all sessions', async () => {
    const u = await register(server);
    for (const username of [u.username, 'nobody_here', "x' OR 1=1 --"]) {
      const res = await api(server, 'POST', '/auth/forgot-password', { body: { username } });
      expect(res.status).toBe(202);
      expect(res.body).toBeUndefined();
    }
    // Without SMTP the request is audited and logged as undeliverable.
    await expect
      .poll(
        async () => (await server.db('audit_log').where({ action: 'password.reset_request', user_id: u.id })).length,
      )
      .toBe(1);
    expect(server.logs.join('')).toContain('SMTP is not configured');

    // The admin path (same verb as `voicechat users reset-password`).
    const { issuePasswordResetToken } = await import('../../src/auth/password-reset.js');
    const { token } = await issuePasswordResetToken(server.db, u.id, { action: 'admin.password_reset' });
    keep(token);
    const weak = await api(server, 'POST', '/auth/reset-password', { body: { token, new_password: 'short' } });
    expect(weak.status).toBe(400);
    const reset = await api(server, 'POST', '/auth/reset-password', {
      body: { token, new_password: 'reset password 1' },
    });
    expect(reset.status).toBe(204);
    keep('reset password 1');
    expect((await api(server, 'GET', '/auth/me', bearer(u.access))).status).toBe(401);
    const again = await api(server, 'POST', '/auth/reset-password', {
      body: { token, new_password: 'reset password 2' },
    });
    expect(again.status).toBe(400);
    expect((await login(server, { username: u.username, password: 'reset password 1' })).status).toBe(200);

    // Expired tokens are refused.
    const { token: old } = await issuePasswordResetToken(server.db, u.id, { action: 'admin.password_reset' });
    await server
      .db('password_reset_tokens')
      .where({ token_hash: hashToken(old) })
      .update({ expires_at: nowMs() - 1, created_at: nowMs() - 3_600_001 });
    expect(
      (await api(server, 'POST', '/auth/reset-password', { body: { token: old, new_password: 'whatever123' } })).status,
    ).toBe(400);
  });

  it('sets no cookie and ignores cookies: a cookie-only request is 401', async () => {
    const u = await register(server);
    const res = await api(server, 'GET', '/auth/me', {
      headers: { cookie: `access_token=${u.access}; token=${u.access}; session=${u.refresh}` },
    });
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe('UNAUTHENTICATED');
    for (const path of ['/auth/me', '/auth/sessions']) {
      const r = await api(server, 'GET', path, u);
      expect(r.headers.get('set-cookie')).toBeNull();
    }
  });

  it('SQL injection strings in username and password change nothing', async () => {
    const before = await server.db('users').count<{ n: number }[]>({ n: '*' });
    const names = [
      "' OR 1=1 --",
      "admin'--",
      '"; DROP TABLE users; --',
      "%'",
      'ʼ OR ʼ1ʼ=ʼ1',
      "x' UNION SELECT password_hash FROM users --",
    ];
    for (const username of names) {
      const li = await login(server, { username, password: "' OR '1'='1" });
      expect(li.status).toBe(401);
      expect(li.body.error.code).toBe('INVALID_CREDENTIALS');
      const reg = await api(server, 'POST', '/auth/register', { body: { username, password: "' OR '1'='1' --" } });
      expect(reg.status).toBe(400);
    }
    // A real user with an injection string as password: stored and checked as plain data.
    const u = await register(server, { password: "'; DROP TABLE sessions; --" });
    expect((await login(server, { username: u.username, password: "' OR 1=1 --" })).status).toBe(401);
    expect((await login(server, { username: u.username, password: "'; DROP TABLE sessions; --" })).status).toBe(200);
    const after = await server.db('users').count<{ n: number }[]>({ n: '*' });
    expect(Number(after[0]?.n)).toBe(Number(before[0]?.n) + 1);
    expect(await server.db.schema.hasTable('sessions')).toBe(true);
  });

  it('registration policy: closed refuses, invite requires a valid code and joins its guild', async () => {
    const closed = await startTestServer({ env: { VOICECHAT_REGISTRATION: 'closed' } });
    const invite = await startTestServer({ env: { VOICECHAT_REGISTRATION: 'invite' } });
    try {
      const c = await api(closed, 'POST', '/auth/register', { body: { username: uniqueName(), password: PASSWORD } });
      expect(c.status).toBe(403);
      expect(c.body.error.code).toBe('FORBIDDEN');
      expect(
        await closed
          .db('users')
          .count<{ n: number }[]>({ n: '*' })
          .then((r) => Number(r[0]?.n)),
      ).toBe(0);

      const noCode = await api(invite, 'POST', '/auth/register', {
        body: { username: uniqueName(), password: PASSWORD },
      });
      expect(noCode.status).toBe(400);
      expect(noCode.body.error.details[0].path).toBe('invite_code');

      // A guild with invites: one with a single use, one expired.
      const now = nowMs();
      const ownerId = newId();
      await invite
        .db('users')
        .insert({ id: ownerId, username: uniqueName('owner'), password_hash: 'x', created_at: now, updated_at: now });
      const guildId = newId();
      await invite.db('guilds').insert({ id: guildId, name: 'G', owner_id: ownerId, created_at: now, updated_at: now });
      await invite.db('invites').insert([
        { code: 'ONCE1234', guild_id: guildId, creator_id: ownerId, max_uses: 1, uses: 0, created_at: now },
        {
          code: 'EXPIRED1',
          guild_id: guildId,
          creator_id: ownerId,
          max_uses: null,
          uses: 0,
          created_at: now - 10,
          expires_at: now - 1,
        },
      ]);
      const bad = await api(invite, 'POST', '/auth/register', {
        body: { username: uniqueName(), password: PASSWORD, invite_code: 'NOPE0000' },
      });
      expect(bad.status).toBe(403);
      const expired = await api(invite, 'POST', '/auth/register', {
        body: { username: uniqueName(), password: PASSWORD, invite_code: 'EXPIRED1' },
      });
      expect(expired.status).toBe(403);
      const usersBefore = Number((await invite.db('users').count<{ n: number }[]>({ n: '*' }))[0]?.n);
      expect(usersBefore).toBe(1); // no half-written user from the refused attempts

      const ok = await api(invite, 'POST', '/auth/register', {
        body: { username: uniqueName(), password: PASSWORD, invite_code: 'ONCE1234' },
      });
      expect(ok.status).toBe(201);
      expect(await invite.db('guild_members').where({ guild_id: guildId, user_id: ok.body.user.id })).toHaveLength(1);
      expect((await invite.db('invites').where({ code: 'ONCE1234' }).first()).uses).toBe(1);
      const used = await api(invite, 'POST', '/auth/register', {
        body: { username: uniqueName(), password: PASSWORD, invite_code: 'ONCE1234' },
      });
      expect(used.status).toBe(403);
    } finally {
      await closed.stop();
      await invite.stop();
    }
  });

  it('publishes sessions_revoked on the bus after every revocation (the gateway closes sockets on it)', async () => {
    const seen: BusMessage[] = [];
    const off = server.app.bus.subscribe((m) => {
      if (m.kind === 'sessions_revoked') seen.push(m);
    });
    try {
      const u = await register(server);
      const sid0 = sidOf(u.access);
      await api(server, 'POST', '/auth/logout', { ...bearer(u.access), body: {} });
      expect(seen.at(-1)).toEqual({ kind: 'sessions_revoked', userId: u.id, sessionIds: [sid0] });

      const a = await login(server, { username: u.username, password: u.password });
      await api(server, 'POST', '/auth/me/password', {
        ...bearer(a.body.access_token),
        body: { current_password: u.password, new_password: 'bus password 1' },
      });
      expect(seen.at(-1)).toEqual({
        kind: 'sessions_revoked',
        userId: u.id,
        sessionIds: 'all',
        exceptSessionId: sidOf(a.body.access_token),
      });

      const b = await login(server, { username: u.username, password: 'bus password 1' });
      const r = await api(server, 'POST', '/auth/refresh', { body: { refresh_token: b.body.refresh_token } });
      expect(r.status).toBe(200);
      await api(server, 'POST', '/auth/refresh', { body: { refresh_token: b.body.refresh_token } });
      expect(seen.at(-1)).toEqual({ kind: 'sessions_revoked', userId: u.id, sessionIds: [sidOf(b.body.access_token)] });

      await api(server, 'DELETE', '/auth/sessions', bearer(a.body.access_token));
      expect(seen.at(-1)).toEqual({ kind: 'sessions_revoked', userId: u.id, sessionIds: 'all' });

      const { issuePasswordResetToken } = await import('../../src/auth/password-reset.js');
      const { token } = await issuePasswordResetToken(server.db, u.id, { action: 'admin.password_reset' });
      const before = seen.length;
      await api(server, 'POST', '/auth/reset-password', { body: { token, new_password: 'bus password 2' } });
      expect(seen.length).toBe(before + 1);
      expect(seen.at(-1)).toEqual({ kind: 'sessions_revoked', userId: u.id, sessionIds: 'all' });
    } finally {
      off();
    }
  });

  it('re-hashes a password made with older Argon2 parameters at the next successful login', async () => {
    const stronger = await startTestServer({ env: { VOICECHAT_ARGON2_TIME_COST: '3' } });
    try {
      const old = await createUser(stronger); // factory hash: m=19456, t=2
      const before = (await stronger.db('users').where({ id: old.id }).first()).password_hash as string;
      expect(before).toContain('t=2');
      expect((await login(stronger, { username: old.username, password: 'wrong password' })).status).toBe(401);
      expect((await stronger.db('users').where({ id: old.id }).first()).password_hash).toBe(before);
      expect((await login(stronger, { username: old.username, password: old.password })).status).toBe(200);
      const after = (await stronger.db('users').where({ id: old.id }).first()).password_hash as string;
      expect(after).toMatch(/^\$argon2id\$v=19\$m=19456,p=1,t=3\$/);
      expect((await login(stronger, { username: old.username, password: old.password })).status).toBe(200);
    } finally {
      await stronger.stop();
    }
  });

  it('raw rows hold no token the client received; logs hold no secret; the audit chain verifies', async () => {
    const sessions = await server.db('sessions').select('*');
    const resets = await server.db('password_reset_tokens').select('*');
    const raw = JSON.stringify([sessions, resets]);
    for (const s of secrets) expect(raw.includes(s), 'raw table holds a token').toBe(false);
    // And every stored hash is the SHA-256 of something, not the token itself.
    for (const row of sessions) expect(row.token_hash).toMatch(/^[0-9a-f]{64}$/);

    const hashes = (await server.db('users').select('password_hash')).map((r) => r.password_hash as string);
    const logs = server.logs.join('\n');
    expect(logs.length).toBeGreaterThan(0);
    for (const s of [...secrets, ...hashes.filter((h) => h.length > 8)]) {
      expect(logs.includes(s), 'a secret appears in the log').toBe(false);
    }

    const actions = new Set((await server.db('audit_log').select('action')).map((r) => r.action));
    for (const a of [
      'user.register',
      'auth.login',
      'auth.login_failed',
      'auth.refresh',
      'auth.token_reused',
      'auth.logout',
      'auth.logout_all',
      'password.change',
      'password.reset_request',
      'password.reset',
    ]) {
      expect(actions.has(a), a).toBe(true);
    }
    const verified = await verifyAuditChain(server.db);
    expect(verified.ok).toBe(true);
    expect(verified.rows).toBeGreaterThan(20);
    const failed = await server.db('audit_log').where({ action: 'auth.login_failed' }).select('metadata');
    for (const r of failed) {
      expect(JSON.parse(r.metadata).reason).toBeTruthy();
      for (const s of secrets) expect(r.metadata.includes(s)).toBe(false);
      expect(r.metadata).not.toContain("' OR '1'='1");
    }
  });

  it('editing, deleting or reordering any audit row breaks verification', async () => {
    const rows = await server.db('audit_log').orderBy('id').select('*');
    const picks = [rows[0], rows[Math.floor(rows.length / 2)], rows[rows.length - 1]];
    for (const row of picks) {
      await server.db('audit_log').where({ id: row.id }).update({ metadata: '{"reason":"edited"}' });
      const v = await verifyAuditChain(server.db);
      expect(v.ok).toBe(false);
      expect(v.brokenAt).toBe(Number(row.id));
      await server.db('audit_log').where({ id: row.id }).update({ metadata: row.metadata });
      expect((await verifyAuditChain(server.db)).ok).toBe(true);
    }
    const mid = rows[Math.floor(rows.length / 2)];
    await server.db('audit_log').where({ id: mid.id }).delete();
    expect((await verifyAuditChain(server.db)).ok).toBe(false);
    await server.db('audit_log').insert(mid);
    expect((await verifyAuditChain(server.db)).ok).toBe(true);
    const last = rows[rows.length - 1];
    await server
      .db('audit_log')
      .where({ id: last.id })
      .update({ action: 'auth.login' === last.action ? 'auth.logout' : 'auth.login' });
    expect((await verifyAuditChain(server.db)).ok).toBe(false);
  });
});
