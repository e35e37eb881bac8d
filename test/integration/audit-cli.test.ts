/** `voicechat audit`: listing with filters, --verify on a real trail (intact, edited, deleted), --posture. */
import { chmodSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Audit from '../../commands/audit.js';
import { login, register } from '../support/auth.js';
import { runCommand } from '../support/cli.js';
import { writeServerConfig } from '../support/ops.js';
import { startTestServer, type TestServer } from '../support/server.js';

describe('voicechat audit', () => {
  let server: TestServer;
  let configPath: string;
  let alice: string;

  beforeAll(async () => {
    server = await startTestServer({ env: { VOICECHAT_LOG_LEVEL: 'warn', VOICECHAT_RATE_LIMIT_SCALE: '1000' } });
    configPath = writeServerConfig(server, {
      VOICECHAT_PUBLIC_URL: 'https://chat.example.org',
      VOICECHAT_TRUSTED_PROXIES: '127.0.0.1',
    });
    // A real trail: registrations, logins, a failed login.
    const a = await register(server);
    alice = a.username;
    const b = await register(server);
    await login(server, { username: a.username, password: a.password });
    await login(server, { username: b.username, password: 'wrong password!' });
  });
  afterAll(async () => {
    await server?.stop();
  });

  const audit = (...args: string[]) => runCommand(Audit, ['--config', configPath, ...args]);

  it('lists rows newest first with filters, as a table or JSON with every column', async () => {
    const all = await audit('--json');
    expect(all.exit, all.stderr).toBe(0);
    const rows = JSON.parse(all.stdout);
    expect(rows.length).toBeGreaterThanOrEqual(4);
    expect(rows[0].id).toBeGreaterThan(rows[1].id);
    expect(Object.keys(rows[0]).sort()).toEqual(
      [
        'action',
        'created_at',
        'hash',
        'id',
        'ip_address',
        'metadata',
        'prev_hash',
        'resource_id',
        'resource_type',
        'user_id',
      ].sort(),
    );
    const mine = JSON.parse((await audit('--user', alice, '--json')).stdout);
    expect(mine.length).toBeGreaterThanOrEqual(2);
    expect(new Set(mine.map((r: { user_id: string }) => r.user_id)).size).toBe(1);
    const failed = JSON.parse((await audit('--action', 'auth.login_failed', '--json')).stdout);
    expect(failed).toHaveLength(1);
    const authStar = JSON.parse((await audit('--action', 'auth.*', '--limit', '2', '--json')).stdout);
    expect(authStar).toHaveLength(2);
    for (const r of authStar) expect(r.action).toMatch(/^auth\./);
    expect(JSON.parse((await audit('--since', '1h', '--json')).stdout).length).toBe(rows.length);
    expect(JSON.parse((await audit('--until', '2000-01-01', '--json')).stdout)).toEqual([]);
    const table = await audit('--limit', '3');
    expect(table.stdout.split('\n')[0]).toMatch(/^ID\s+TIME\s+ACTION\s+USER\s+RESOURCE\s+IP\s+METADATA/);
    expect(table.stdout.trim().split('\n')).toHaveLength(4);

    const bad = await audit('--since', 'yesterday');
    expect(bad.exit).not.toBe(0);
    expect(bad.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^Error: --since must be an ISO-8601/)]);
    const nobody = await audit('--user', 'no_such_user');
    expect(nobody.exit).toBe(5);
  });

  it('--verify passes on the trail and names an edited or a deleted row (exit 1)', async () => {
    const ok = await audit('--verify');
    expect(ok.exit, ok.stderr).toBe(0);
    expect(ok.stdout.trim()).toMatch(/^chain intact, \d+ rows$/);
    const rows = await server.db('audit_log').orderBy('id');
    const victim = rows[1];
    await server.db('audit_log').where({ id: victim.id }).update({ ip_address: '10.9.9.9' });
    const edited = await audit('--verify');
    expect(edited.exit).toBe(1);
    expect(edited.stderr.trim()).toBe(
      `Error: audit chain broken at row ${victim.id}: row contents changed (1 rows verified before it)`,
    );
    await server.db('audit_log').where({ id: victim.id }).update({ ip_address: victim.ip_address });
    await server.db('audit_log').where({ id: victim.id }).delete();
    const deleted = await audit('--verify', '--json');
    expect(deleted.exit).toBe(1);
    expect(JSON.parse(deleted.stdout)).toMatchObject({
      ok: false,
      brokenAt: Number(victim.id),
      reason: `row ${victim.id} is missing`,
    });
    await server.db('audit_log').insert(victim);
    // The last row removed: the chain head no longer matches.
    const last = rows.at(-1);
    await server.db('audit_log').where({ id: last.id }).delete();
    expect((await audit('--verify')).exit).toBe(1);
    await server.db('audit_log').insert(last);
    expect((await audit('--verify')).exit).toBe(0);
  });

  it('--posture: one line per check; a 0644 keyring fails it (exit 1)', async () => {
    const good = await audit('--posture', '--json');
    const checks = JSON.parse(good.stdout) as { check: string; level: string; detail: string }[];
    expect(checks.map((c) => c.check)).toEqual(
      expect.arrayContaining([
        'keyring file',
        'keyring owner',
        'mfa key age',
        'mfa staged key',
        'tls / proxy',
        'registration',
        'argon2',
        'migrations',
        'audit chain',
        'service user',
      ]),
    );
    expect(checks.find((c) => c.check === 'keyring file')?.level).toBe('ok');
    expect(checks.find((c) => c.check === 'tls / proxy')?.level).toBe('ok');
    expect(checks.find((c) => c.check === 'registration')).toMatchObject({ level: 'ok', detail: 'invite' });
    expect(checks.find((c) => c.check === 'audit chain')?.level).toBe('ok');
    // Test keyrings carry no staged key: warned, not failed.
    expect(checks.find((c) => c.check === 'mfa staged key')?.level).toBe('warn');
    expect(good.exit, good.stderr).toBe(0);

    chmodSync(server.config.keyringFile, 0o644);
    try {
      const bad = await audit('--posture');
      expect(bad.exit).toBe(1);
      expect(bad.stdout).toMatch(/^fail\s+keyring file\s+.*mode 0644/m);
      expect(bad.stderr.trim()).toBe('Error: 1 posture check(s) failed: keyring file');
    } finally {
      chmodSync(server.config.keyringFile, 0o600);
    }
  });
});
