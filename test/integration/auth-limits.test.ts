import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { adminIssueResetToken } from '../../src/auth/password-reset.js';
import { bearer, login, PASSWORD, register, uniqueName } from '../support/auth.js';
import { api } from '../support/factories.js';
import { startTestServer, type TestServer } from '../support/server.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const xff = (ip: string) => ({ 'x-forwarded-for': ip });

describe('rate limits and lockout at the documented numbers (windows shrunk by config)', () => {
  const servers: TestServer[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
  });
  const start = async (env: Record<string, string>) => {
    const s = await startTestServer({ env });
    servers.push(s);
    return s;
  };

  it('login: 5 per minute per IP, the 6th is 429 with Retry-After; recovers after the window', async () => {
    // Window 60 s × 0.03 = 1.8 s.
    const server = await start({ VOICECHAT_RATE_LIMIT_WINDOW_SCALE: '0.03', VOICECHAT_TRUSTED_PROXIES: '127.0.0.1' });
    const u = await register(server);
    let statuses: number[] = [];
    let sixth: Awaited<ReturnType<typeof login>> | undefined;
    let started = 0;
    let ip = '';
    // On a loaded machine six logins may not fit one shrunk window: measure again from a fresh IP.
    for (let round = 0; round < 3; round++) {
      ip = `203.0.113.${100 + round}`;
      started = Date.now();
      statuses = [];
      for (let i = 0; i < 5; i++) {
        statuses.push((await login(server, { username: `ghost_${i}`, password: 'wrong password' }, xff(ip))).status);
      }
      sixth = await login(server, { username: u.username, password: u.password }, xff(ip));
      statuses.push(sixth.status);
      if (Date.now() - started < 1500) break;
    }
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429]);
    expect(sixth?.body.error.code).toBe('RATE_LIMITED');
    expect(Number(sixth?.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    await sleep(Math.max(0, 1850 - (Date.now() - started)));
    expect((await login(server, { username: u.username, password: u.password }, xff(ip))).status).toBe(200);
  });

  it('10 failed logins from one IP in 5 minutes block that IP for 15 minutes (correct password too)', async () => {
    // ×0.006: login window 0.36 s, failure window 1.8 s, block 5.4 s.
    const server = await start({ VOICECHAT_RATE_LIMIT_WINDOW_SCALE: '0.006', VOICECHAT_TRUSTED_PROXIES: '127.0.0.1' });
    const u = await register(server);
    const ip = '203.0.113.7';
    let failures = 0;
    const t0 = Date.now();
    while (failures < 10) {
      // Different (unknown) accounts, so only the per-IP rule is in play.
      const r = await login(server, { username: `nobody_${failures}`, password: 'wrong password' }, xff(ip));
      if (r.status === 401) failures++;
      else if (r.status === 429)
        await sleep(30); // the 5-per-window login limit; wait for its window
      else throw new Error(`unexpected ${r.status}`);
    }
    expect(Date.now() - t0).toBeLessThan(1800);
    await sleep(400); // past the login window: what refuses now is the block
    const blocked = await login(server, { username: u.username, password: u.password }, xff(ip));
    expect(blocked.status).toBe(429);
    expect(blocked.body.error.code).toBe('RATE_LIMITED');
    // Another IP is not affected.
    expect((await login(server, { username: u.username, password: u.password }, xff('203.0.113.8'))).status).toBe(200);
    await sleep(1500); // past the failure window too: the block outlives it
    expect((await login(server, { username: u.username, password: u.password }, xff(ip))).status).toBe(429);
    // The block ends 5.4 s after the 10th failure.
    await expect
      .poll(async () => (await login(server, { username: u.username, password: u.password }, xff(ip))).status, {
        timeout: 7000,
        interval: 250,
      })
      .toBe(200);
    expect(Date.now() - t0).toBeGreaterThan(5000);
  });

  it('10 consecutive failures on one account (from 10 IPs) lock it: 403 ACCOUNT_LOCKED even with the right password', async () => {
    // Lock 15 min × 0.004 = 3.6 s.
    const server = await start({ VOICECHAT_RATE_LIMIT_WINDOW_SCALE: '0.004', VOICECHAT_TRUSTED_PROXIES: '127.0.0.1' });
    const u = await register(server);
    // Nine failures, then a success: the counter is about *consecutive* failures.
    for (let i = 0; i < 9; i++)
      await login(server, { username: u.username, password: `wrong ${i}` }, xff(`198.51.100.${i}`));
    expect((await login(server, { username: u.username, password: u.password }, xff('198.51.100.200'))).status).toBe(
      200,
    );
    const t0 = Date.now();
    for (let i = 0; i < 10; i++) {
      const r = await login(server, { username: u.username, password: `wrong ${i}` }, xff(`198.51.100.${i + 20}`));
      expect(r.status).toBe(401);
      expect(r.body.error.code).toBe('INVALID_CREDENTIALS');
    }
    const locked = await login(server, { username: u.username, password: u.password }, xff('198.51.100.99'));
    expect(locked.status).toBe(403);
    expect(locked.body.error.code).toBe('ACCOUNT_LOCKED');
    expect(Number(locked.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    const row = await server.db('users').where({ id: u.id }).first();
    expect(Number(row.locked_until)).toBeGreaterThan(Date.now());
    const audit = await server.db('audit_log').where({ user_id: u.id, action: 'auth.locked' });
    expect(audit).toHaveLength(1);
    const reasons = (await server.db('audit_log').where({ user_id: u.id, action: 'auth.login_failed' })).map(
      (r) => JSON.parse(r.metadata).reason,
    );
    expect(reasons.filter((r) => r === 'bad_password')).toHaveLength(19);
    expect(reasons).toContain('account_locked');
    // Existing sessions are not the lock's business; new logins are.
    expect((await api(server, 'GET', '/auth/me', u)).status).toBe(200);
    await expect
      .poll(
        async () => (await login(server, { username: u.username, password: u.password }, xff('198.51.100.98'))).status,
        {
          timeout: 5000,
          interval: 250,
        },
      )
      .toBe(200);
    expect(Date.now() - t0).toBeGreaterThan(3000);
  });

  it('an unknown username locks on the same schedule as a real account (no existence leak)', async () => {
    const server = await start({ VOICECHAT_RATE_LIMIT_WINDOW_SCALE: '0.004', VOICECHAT_TRUSTED_PROXIES: '127.0.0.1' });
    const u = await register(server);
    const answers: Record<string, { status: number; code: string }[]> = { real: [], ghost: [] };
    for (const [kind, name] of [
      ['real', u.username],
      ['ghost', 'no_such_person'],
    ] as const) {
      for (let i = 0; i < 11; i++) {
        const r = await login(
          server,
          { username: name, password: `wrong ${i}` },
          xff(`198.51.${kind === 'real' ? 1 : 2}.${i}`),
        );
        answers[kind]?.push({ status: r.status, code: r.body.error.code });
      }
    }
    expect(answers.ghost).toEqual(answers.real);
    expect(answers.real?.[10]).toEqual({ status: 403, code: 'ACCOUNT_LOCKED' });
  });

  it('forgot-password requests naming a victim do not use up the budget of their valid reset token', async () => {
    const server = await start({ VOICECHAT_TRUSTED_PROXIES: '127.0.0.1' });
    const u = await register(server);
    for (let i = 0; i < 6; i++) {
      await api(server, 'POST', '/auth/forgot-password', {
        body: { username: u.username },
        headers: xff(`192.0.2.${70 + i}`),
      });
    }
    const { token } = await adminIssueResetToken(server.db, u.username, undefined);
    const r = await api(server, 'POST', '/auth/reset-password', {
      body: { token, new_password: 'a brand new password' },
      headers: xff('192.0.2.99'),
    });
    expect(r.status).toBe(204);
  });

  it('register 5 per hour per IP; forgot/reset 5 per hour per IP and per account', async () => {
    // ×0.0005: one hour = 1.8 s.
    const server = await start({ VOICECHAT_RATE_LIMIT_WINDOW_SCALE: '0.0005', VOICECHAT_TRUSTED_PROXIES: '127.0.0.1' });
    const t0 = Date.now();
    for (let i = 0; i < 5; i++) await register(server, { headers: xff('192.0.2.1') });
    const sixth = await api(server, 'POST', '/auth/register', {
      body: { username: uniqueName(), password: PASSWORD },
      headers: xff('192.0.2.1'),
    });
    expect(Date.now() - t0).toBeLessThan(1800);
    expect(sixth.status).toBe(429);
    expect(sixth.headers.get('retry-after')).toBeTruthy();
    // Per IP: another address may register.
    await register(server, { headers: xff('192.0.2.2') });

    // forgot-password per IP (different names), then per account (different IPs).
    const f0 = Date.now();
    for (let i = 0; i < 5; i++) {
      const r = await api(server, 'POST', '/auth/forgot-password', {
        body: { username: `n${i}` },
        headers: xff('192.0.2.3'),
      });
      expect(r.status).toBe(202);
    }
    expect(
      (await api(server, 'POST', '/auth/forgot-password', { body: { username: 'n9' }, headers: xff('192.0.2.3') }))
        .status,
    ).toBe(429);
    for (let i = 0; i < 5; i++) {
      const r = await api(server, 'POST', '/auth/forgot-password', {
        body: { username: 'target' },
        headers: xff(`192.0.2.${10 + i}`),
      });
      expect(r.status).toBe(202);
    }
    expect(
      (await api(server, 'POST', '/auth/forgot-password', { body: { username: 'target' }, headers: xff('192.0.2.50') }))
        .status,
    ).toBe(429);
    // reset-password with guessed tokens: 5 per IP.
    for (let i = 0; i < 5; i++) {
      const r = await api(server, 'POST', '/auth/reset-password', {
        body: { token: `guess${i}`, new_password: 'whatever123' },
        headers: xff('192.0.2.60'),
      });
      expect(r.status).toBe(400);
    }
    const sixthReset = await api(server, 'POST', '/auth/reset-password', {
      body: { token: 'guess6', new_password: 'whatever123' },
      headers: xff('192.0.2.60'),
    });
    expect(Date.now() - f0).toBeLessThan(1800);
    expect(sixthReset.status).toBe(429);
    // Recovery after the (shrunk) hour.
    await sleep(Math.max(0, 1900 - (Date.now() - f0)));
    await register(server, { headers: xff('192.0.2.1') });
    expect(
      (await api(server, 'POST', '/auth/forgot-password', { body: { username: 'target' }, headers: xff('192.0.2.50') }))
        .status,
    ).toBe(202);
  });

  it('Redis-backed limits are shared by two server instances', async () => {
    const prefix = `vctest${process.pid}${Math.random().toString(36).slice(2, 8)}`;
    const env = { REDIS_URL: 'redis://127.0.0.1:6379', VOICECHAT_REDIS_PREFIX: prefix };
    const a = await start(env);
    const b = await start(env);
    const redis = new Redis('redis://127.0.0.1:6379');
    try {
      for (const s of [a, b, a, b, a]) {
        expect((await login(s, { username: 'nobody_here', password: 'wrong password' })).status).toBe(401);
      }
      expect((await login(b, { username: 'nobody_here', password: 'wrong password' })).status).toBe(429);
      expect((await login(a, { username: 'nobody_here', password: 'wrong password' })).status).toBe(429);
      const keys = await redis.keys(`${prefix}:rl:*`);
      expect(keys.length).toBeGreaterThan(0);
    } finally {
      // Only this test's keys: other tests may share the Redis.
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length) await redis.del(...keys);
      redis.disconnect();
    }
  });

  it('auth limits fail closed when Redis is unreachable, and the log says why', async () => {
    const server = await start({ REDIS_URL: 'redis://127.0.0.1:1', VOICECHAT_REDIS_PREFIX: 'vcdown' });
    const li = await login(server, { username: 'someone', password: 'whatever pw' });
    expect(li.status).toBe(429);
    expect(li.body.error.code).toBe('RATE_LIMITED');
    const reg = await api(server, 'POST', '/auth/register', { body: { username: uniqueName(), password: PASSWORD } });
    expect(reg.status).toBe(429);
    expect(await server.db('users').select('id')).toHaveLength(0);
    expect(server.logs.join('')).toContain('redis (rate limits) unavailable');
  });

  it('unknown user and wrong password: byte-identical answers, median times within 20%', async () => {
    const server = await start({ VOICECHAT_RATE_LIMIT_SCALE: '10000' });
    const users = await Promise.all(Array.from({ length: 12 }, () => register(server)));
    const raw = async (username: string) => {
      const t = performance.now();
      const res = await fetch(`${server.url}/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username, password: 'definitely wrong' }),
      });
      const body = await res.text();
      const headers = [...res.headers.entries()].filter(([k]) => k !== 'date');
      return { ms: performance.now() - t, status: res.status, body, headers: JSON.stringify(headers) };
    };
    const median = (xs: number[]) => [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)] as number;
    // One round: 20 interleaved pairs after 4 warm-up pairs; the relative gap of the medians.
    const round = async (r: number) => {
      const unknown: number[] = [];
      const wrong: number[] = [];
      for (let i = 0; i < 24; i++) {
        // 72 failures over 12 accounts: 6 each, far from the lockout at 10 consecutive ones.
        const w = await raw((users[(r * 24 + i) % 12] as { username: string }).username);
        const n = await raw(`ghost_${r}_${i}`);
        expect(n.status).toBe(401);
        expect(n.body).toBe(w.body);
        expect(n.headers).toBe(w.headers);
        if (i >= 4) {
          wrong.push(w.ms);
          unknown.push(n.ms);
        }
      }
      const [mu, mw] = [median(unknown), median(wrong)];
      return Math.abs(mu - mw) / Math.max(mu, mw);
    };
    // A real leak (no dummy hash for unknown users) is a gap of ~90% every round; a loaded machine
    // (other suites on the same two cores) can push one honest round past 20%, so up to three rounds.
    const gaps: number[] = [];
    for (let r = 0; r < 3 && !(gaps.at(-1)! < 0.2); r++) gaps.push(await round(r));
    expect(Math.min(...gaps), `median gaps per round: ${gaps.join(', ')}`).toBeLessThan(0.2);
    expect(bearer).toBeTypeOf('function');
  });
});
