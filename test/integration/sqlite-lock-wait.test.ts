/**
 * The SQLite lock-wait path (issue 8): when another connection holds the write lock longer than the
 * configured wait budget, a write answers 503 SERVICE_UNAVAILABLE with Retry-After — never 500 — and
 * leaves nothing half-written; once the lock is gone the same writes succeed. Always runs on a SQLite
 * file (the behaviour under test is SQLite's), in both the SQLite and the Postgres test runs.
 */
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { translateDbError } from '../../src/db/errors.js';
import { register } from '../support/auth.js';
import { api } from '../support/factories.js';
import { ok } from '../support/guilds.js';
import { useTestServer } from '../support/server.js';

const BUDGET_MS = 300;

describe('SQLite write lock held past the wait budget', () => {
  const server = useTestServer(
    { VOICECHAT_SQLITE_BUSY_TIMEOUT_MS: String(BUDGET_MS), VOICECHAT_RATE_LIMIT_SCALE: '1000' },
    { dialect: 'sqlite' },
  );

  it('maps every SQLITE_BUSY variant to 503 with Retry-After', () => {
    for (const code of ['SQLITE_BUSY', 'SQLITE_BUSY_SNAPSHOT', 'SQLITE_BUSY_TIMEOUT', 'SQLITE_BUSY_RECOVERY']) {
      const e = translateDbError(Object.assign(new Error('database is locked'), { code }));
      expect(e?.status, code).toBe(503);
      expect(e?.code).toBe('SERVICE_UNAVAILABLE');
      expect(Number(e?.headers?.['Retry-After'])).toBeGreaterThanOrEqual(1);
      expect(e?.message).not.toContain('locked');
    }
  });

  it('answers 503 + Retry-After while another process holds the lock, then succeeds', async () => {
    const owner = await register(server);
    const guild = await ok(api(server, 'POST', '/api/guilds', { user: owner, body: { name: 'before' } }), 201);
    const channelId = guild.channels.find((c: { type: string }) => c.type === 'text').id as string;

    const other = new Database(server.config.sqliteFile);
    other.pragma('busy_timeout = 0');
    other.exec('BEGIN IMMEDIATE');
    let released = false;
    try {
      const started = Date.now();
      const rename = await api(server, 'PATCH', `/api/guilds/${guild.id}`, { user: owner, body: { name: 'after' } });
      expect(Date.now() - started).toBeGreaterThanOrEqual(BUDGET_MS - 20);
      const message = await api(server, 'POST', `/api/channels/${channelId}/messages`, {
        user: owner,
        body: { content: 'queued behind the lock' },
      });
      const profile = await api(server, 'PATCH', '/auth/me', { user: owner, body: { display_name: 'Locked' } });
      for (const r of [rename, message, profile]) {
        expect(r.status, JSON.stringify(r.body)).toBe(503);
        expect(r.body.error.code).toBe('SERVICE_UNAVAILABLE');
        expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      }
      other.exec('ROLLBACK');
      released = true;

      // Nothing of the refused writes was stored.
      expect((await server.db('guilds').where({ id: guild.id }).first()).name).toBe('before');
      expect(await server.db('messages').where({ channel_id: channelId }).count({ n: '*' })).toEqual([{ n: 0 }]);

      await ok(api(server, 'PATCH', `/api/guilds/${guild.id}`, { user: owner, body: { name: 'after' } }));
      await ok(
        api(server, 'POST', `/api/channels/${channelId}/messages`, { user: owner, body: { content: 'now' } }),
        201,
      );
      await ok(api(server, 'PATCH', '/auth/me', { user: owner, body: { display_name: 'Free' } }));
      expect(server.logs.join('')).not.toContain('unhandled error');
    } finally {
      if (!released) other.exec('ROLLBACK');
      other.close();
    }
  });
});
