/**
 * The login path (issue 14 item 4): a successful login reads the user once on the request's
 * connection and commits its session and audit rows together — on SQLite through the audited
 * writer's thread, so no commit (and its fsync) runs on the event loop. Concurrent logins (each
 * group-committed with the others, interleaved with main-thread audit writes) leave every row and a
 * hash chain that verifies.
 */
import { describe, expect, it } from 'vitest';
import { verifyAuditChain } from '../../src/audit/verify.js';
import { bearer, login, register } from '../support/auth.js';
import { api } from '../support/factories.js';
import { useTestServer } from '../support/server.js';

describe('login path', () => {
  const server = useTestServer({ VOICECHAT_RATE_LIMIT_SCALE: '1000' });

  it('runs one read on the request connection; session and audit rows are committed together', async () => {
    const u = await register(server);
    const statements: string[] = [];
    const onQuery = (q: { sql: string }) => statements.push(q.sql);
    server.ctx.db.on('query', onQuery);
    let res: Awaited<ReturnType<typeof login>>;
    try {
      res = await login(server, { username: u.username, password: u.password });
    } finally {
      server.ctx.db.off('query', onQuery);
    }
    expect(res.status).toBe(200);
    // The chain head read `for update` (Postgres) belongs to the write.
    const reads = statements.filter((s) => /^select/i.test(s) && !/for update/i.test(s));
    expect(reads).toHaveLength(1);
    expect(reads[0]).toMatch(/from ["`]users["`]/);
    if (server.ctx.dialect === 'sqlite') {
      // Nothing else on the event loop's connection: the write went to the writer thread.
      expect(statements).toHaveLength(1);
    } else {
      expect(statements.filter((s) => /^insert/i.test(s)).map((s) => /into "(\w+)"/.exec(s)?.[1])).toEqual([
        'sessions',
        'audit_log',
      ]);
    }
    const sid = JSON.parse(Buffer.from(res.body.access_token.split('.')[1], 'base64url').toString()).sid;
    const session = await server.db('sessions').where({ id: sid }).first();
    expect(session).toMatchObject({ user_id: u.id, family_id: sid });
    const audit = await server.db('audit_log').where({ action: 'auth.login', resource_id: sid }).first();
    expect(audit).toMatchObject({ user_id: u.id, resource_type: 'session' });
    expect((await api(server, 'GET', '/auth/me', bearer(res.body.access_token))).status).toBe(200);
  });

  it('keeps every row and a verifiable chain under concurrent logins mixed with other audited writes', async () => {
    const users = await Promise.all(Array.from({ length: 6 }, () => register(server)));
    const before = Number((await server.db('audit_log').count({ n: '*' }))[0]?.n);
    const logins = users.flatMap((u) =>
      Array.from({ length: 5 }, () => login(server, { username: u.username, password: u.password })),
    );
    // Main-thread audit writes (a failed login is audited on the request's connection) in between.
    const failures = users.map((u) => login(server, { username: u.username, password: 'not the password' }));
    const results = await Promise.all([...logins, ...failures]);
    expect(results.slice(0, 30).map((r) => r.status)).toEqual(Array(30).fill(200));
    expect(results.slice(30).map((r) => r.status)).toEqual(Array(6).fill(401));
    const sids = results
      .slice(0, 30)
      .map((r) => JSON.parse(Buffer.from(r.body.access_token.split('.')[1], 'base64url').toString()).sid);
    expect(new Set(sids).size).toBe(30);
    expect(Number((await server.db('sessions').whereIn('id', sids).count({ n: '*' }))[0]?.n)).toBe(30);
    const after = Number((await server.db('audit_log').count({ n: '*' }))[0]?.n);
    expect(after - before).toBe(36);
    const verified = await verifyAuditChain(server.db);
    expect(verified).toMatchObject({ ok: true });
  });
});
