/**
 * Backup → wipe → restore drills on real databases: taken online from a running server, restored into
 * the same dialect and into the other one (the SQLite → Postgres move); then a server started on the
 * restored config serves MFA logins, guilds, messages and uploads. Corrupted, truncated, newer-schema
 * and unsafe archives are refused with one line and write nothing; a target with data is refused.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { authenticator } from 'otplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Backup from '../../commands/backup.js';
import Restore from '../../commands/restore.js';
import { createApp, type VoiceChatApp } from '../../src/app/create-app.js';
import { loadConfig } from '../../src/config/index.js';
import { sha256Hex } from '../../src/crypto/random.js';
import { createDb, type Dialect } from '../../src/db/knex.js';
import { newId } from '../../src/ids.js';
import { createLogger } from '../../src/logger.js';
import { bearer, register } from '../support/auth.js';
import { runCommand } from '../support/cli.js';
import { createTestDatabase, TEST_DIALECT, type TestDatabase, tempDir } from '../support/db.js';
import { api } from '../support/factories.js';
import { writeServerConfig } from '../support/ops.js';
import { startTestServer, type TestServer } from '../support/server.js';

const PNG = Buffer.from(
  '89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000a49444154789c6300010000050001',
  'hex',
);
const codeAt = (secret: string, step: number) => authenticator.clone({ epoch: step * 30_000 }).generate(secret);

/** Rewrites an archive's records (and its checksums, so only the change itself is judged). */
function rewriteArchive(src: string, dest: string, edit: (records: any[]) => void): void {
  const records = gunzipSync(readFileSync(src))
    .toString('utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  edit(records);
  const body = records.slice(0, -1).map((r) => `${JSON.stringify(r)}\n`);
  const manifest = records.at(-1);
  manifest.records_sha256 = sha256Hex(body.join(''));
  writeFileSync(dest, gzipSync(`${body.join('')}${JSON.stringify(manifest)}\n`));
}

interface Source {
  username: string;
  password: string;
  secret: string;
  step: number;
  guildId: string;
  channelId: string;
  messages: string[];
  attachmentId: string;
}

describe('backup and restore', () => {
  let server: TestServer;
  let dir: string;
  let configPath: string;
  let archive: string;
  let src: Source;
  const cleanup: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    dir = tempDir('vc-backup-');
    server = await startTestServer({ env: { VOICECHAT_LOG_LEVEL: 'warn', VOICECHAT_RATE_LIMIT_SCALE: '1000' } });
    configPath = writeServerConfig(server, {
      VOICECHAT_REGISTRATION: 'open',
    });
    // A populated server, through the real API: MFA user, guild, messages, an upload.
    const u = await register(server);
    const setup = await api(server, 'POST', '/auth/mfa/setup', { ...bearer(u.access), body: { password: u.password } });
    const step = Math.floor(Date.now() / 30_000);
    const verified = await api(server, 'POST', '/auth/mfa/verify', {
      ...bearer(u.access),
      body: { code: codeAt(setup.body.secret, step) },
    });
    expect(verified.status).toBe(200);
    const guild = await api(server, 'POST', '/api/guilds', { ...bearer(u.access), body: { name: 'Backed up' } });
    const channel =
      guild.body.channels?.find((c: { type: string }) => c.type === 'text') ??
      (await api(server, 'GET', `/api/guilds/${guild.body.id}/channels`, bearer(u.access))).body.find(
        (c: { type: string }) => c.type === 'text',
      );
    const messages = ['first <b>message</b>', 'second — ünïcode ✓'];
    for (const content of messages) {
      expect(
        (await api(server, 'POST', `/api/channels/${channel.id}/messages`, { ...bearer(u.access), body: { content } }))
          .status,
      ).toBe(201);
    }
    const up = await fetch(`${server.url}/api/channels/${channel.id}/attachments`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${u.access}`,
        'content-type': 'application/octet-stream',
        'x-filename': 'pic.png',
      },
      body: PNG,
    });
    expect(up.status).toBe(201);
    const attachmentId = ((await up.json()) as { id: string }).id;
    src = {
      username: u.username,
      password: u.password,
      secret: setup.body.secret,
      step,
      guildId: guild.body.id,
      channelId: channel.id,
      messages,
      attachmentId,
    };

    // Enough rows that restore needs several insert statements per table (SQLite takes ≤ 500 per insert).
    const bulkChannel = newId();
    await server
      .db('channels')
      .insert({ id: bulkChannel, type: 'group_dm', position: 0, created_at: 1, updated_at: 1 });
    const bulk = Array.from({ length: 1200 }, (_, i) => ({
      id: newId(),
      channel_id: bulkChannel,
      author_id: u.id,
      content: `bulk ${i}`,
      // A DM channel takes only encrypted messages (the dm_requires_encryption trigger).
      encrypted: true,
      nonce: `n${i}`,
      created_at: Date.now(),
    }));
    for (let i = 0; i < bulk.length; i += 100) await server.db('messages').insert(bulk.slice(i, i + 100));

    archive = path.join(dir, 'drill.vcbak');
    // Online: the server keeps running (and writing) while the snapshot is taken.
    const [res] = await Promise.all([
      runCommand(Backup, ['--config', configPath, archive, '--include-keys', '--json']),
      api(server, 'POST', `/api/channels/${channel.id}/messages`, {
        ...bearer(u.access),
        body: { content: 'racing the backup' },
      }),
    ]);
    expect(res.exit, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({
      includes_keys: true,
      files: 1,
      tables: { users: 1, attachments: 1 },
    });
  });

  afterAll(async () => {
    for (const c of cleanup.reverse()) await c();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** An empty target of a dialect: a fresh directory, plus an empty Postgres database for pg. */
  async function emptyTarget(dialect: Dialect): Promise<{ dataDir: string; flags: string[]; database?: TestDatabase }> {
    const dataDir = tempDir('vc-restore-');
    cleanup.push(async () => rmSync(dataDir, { recursive: true, force: true }));
    if (dialect === 'sqlite') return { dataDir, flags: ['--data-dir', dataDir] };
    const database = await createTestDatabase({ migrate: false, dialect: 'pg' });
    cleanup.push(() => database.drop());
    return { dataDir, flags: ['--data-dir', dataDir, '--database-url', database.databaseUrl], database };
  }

  async function checkRestored(dataDir: string): Promise<void> {
    const config = loadConfig({
      configPath: path.join(dataDir, 'voicechat.env'),
      env: { VOICECHAT_HOST: '127.0.0.1', VOICECHAT_PORT: '0' },
    });
    expect(config.keyringFile).toBe(path.join(dataDir, 'keys.json'));
    const app: VoiceChatApp = await createApp(config, { logger: createLogger('silent') });
    try {
      const { port } = await app.start();
      const url = `http://127.0.0.1:${port}`;
      const call = async (
        method: string,
        p: string,
        token?: string,
        body?: unknown,
      ): Promise<{ status: number; body: any }> => {
        const res = await fetch(url + p, {
          method,
          headers: {
            ...(token ? { authorization: `Bearer ${token}` } : {}),
            ...(body ? { 'content-type': 'application/json' } : {}),
          },
          body: body ? JSON.stringify(body) : undefined,
        });
        return {
          status: res.status,
          body: res.headers.get('content-type')?.includes('json')
            ? await res.json()
            : Buffer.from(await res.arrayBuffer()),
        };
      };
      const noCode = await call('POST', '/auth/login', undefined, { username: src.username, password: src.password });
      expect(noCode.body.error?.code).toBe('MFA_REQUIRED');
      const ok = await call('POST', '/auth/login', undefined, {
        username: src.username,
        password: src.password,
        mfa_code: codeAt(src.secret, src.step + 1),
      });
      expect(ok.status, JSON.stringify(ok.body)).toBe(200);
      const token = ok.body.access_token;
      const guilds = await call('GET', '/api/guilds', token);
      expect(guilds.body.map((g: { id: string }) => g.id)).toEqual([src.guildId]);
      const msgs = await call('GET', `/api/channels/${src.channelId}/messages`, token);
      const contents = msgs.body.map((m: { content: string }) => m.content);
      for (const m of src.messages) expect(contents).toContain(m);
      const file = await call('GET', `/api/attachments/${src.attachmentId}`, token);
      expect(file.status).toBe(200);
      expect(Buffer.compare(file.body as Buffer, PNG)).toBe(0);
      // The audit chain came across intact.
      const { verifyAuditChain } = await import('../../src/audit/verify.js');
      expect((await verifyAuditChain(app.ctx.db)).ok).toBe(true);
    } finally {
      await app.stop();
    }
  }

  it(`restores into an empty ${TEST_DIALECT} target: MFA login, guilds, messages and uploads work`, async () => {
    const target = await emptyTarget(TEST_DIALECT);
    const res = await runCommand(Restore, [archive, ...target.flags, '--json']);
    expect(res.exit, res.stderr).toBe(0);
    const out = JSON.parse(res.stdout);
    expect(out).toMatchObject({
      from_dialect: TEST_DIALECT,
      to_dialect: TEST_DIALECT,
      files: 1,
      keyring: { written: true },
    });
    expect(out.tables.users).toBe(1);
    expect(out.tables.messages).toBeGreaterThanOrEqual(1202);
    await checkRestored(target.dataDir);
  });

  const other: Dialect = TEST_DIALECT === 'sqlite' ? 'pg' : 'sqlite';
  it(`restores the ${TEST_DIALECT} backup into ${other} (moving between dialects) with the same checks`, async () => {
    const target = await emptyTarget(other);
    const res = await runCommand(Restore, [archive, ...target.flags, '--json']);
    expect(res.exit, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({ from_dialect: TEST_DIALECT, to_dialect: other });
    await checkRestored(target.dataDir);
  });

  it('refuses corrupted, truncated, newer-schema and unsafe archives with one line, writing nothing', async () => {
    const bytes = readFileSync(archive);
    const flipped = Buffer.from(bytes);
    const mid = Math.floor(bytes.length / 2);
    flipped[mid] = (flipped[mid] as number) ^ 0xff;
    writeFileSync(path.join(dir, 'flipped.vcbak'), flipped);
    writeFileSync(path.join(dir, 'truncated.vcbak'), bytes.subarray(0, Math.floor(bytes.length * 0.7)));
    rewriteArchive(archive, path.join(dir, 'edited-row.vcbak'), (records) => {
      const row = records.find((r) => Array.isArray(r.r) && r.r.includes(src.messages[0]));
      row.r[row.r.indexOf(src.messages[0])] = 'tampered';
    });
    rewriteArchive(archive, path.join(dir, 'newer.vcbak'), (records) => {
      records[0].schema.push('29991231000000_from-the-future');
    });
    rewriteArchive(archive, path.join(dir, 'unsafe.vcbak'), (records) => {
      const f = records.find((r) => r.t === 'file' && r.path.startsWith('uploads/'));
      const end = records.find((r) => r.t === 'end' && r.path === f.path);
      f.path = 'uploads/../../escape';
      end.path = f.path;
      const manifest = records.at(-1);
      manifest.files = { [f.path]: { size: end.size, sha256: end.sha256 } };
    });
    const cases: [string, number, RegExp][] = [
      ['flipped.vcbak', 1, /corrupted|cannot be read/],
      ['truncated.vcbak', 1, /corrupted|truncated/],
      ['edited-row.vcbak', 1, /checksum of table messages does not match/],
      ['newer.vcbak', 4, /newer schema version \(29991231000000_from-the-future\)/],
      ['unsafe.vcbak', 1, /unsafe path/],
    ];
    for (const [name, exit, message] of cases) {
      const target = await emptyTarget(TEST_DIALECT);
      const res = await runCommand(Restore, [path.join(dir, name), ...target.flags]);
      expect(res.exit, `${name}: ${res.stderr}`).toBe(exit);
      const lines = res.stderr.trim().split('\n');
      expect(lines, name).toHaveLength(1);
      expect(lines[0], name).toMatch(message);
      // Nothing written: no database file or tables, no uploads, no config.
      if (target.database) {
        expect(
          (await target.database.db.raw(`SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'`)).rows[0]
            .n,
        ).toBe(0);
      } else {
        expect(existsSync(path.join(target.dataDir, 'voicechat.db'))).toBe(false);
      }
      expect(existsSync(path.join(target.dataDir, 'voicechat.env'))).toBe(false);
      expect(existsSync(path.join(target.dataDir, 'uploads'))).toBe(false);
    }
    const missing = await runCommand(Restore, [path.join(dir, 'nope.vcbak'), '--data-dir', dir]);
    expect(missing.exit).toBe(5);
    // A wrong database URL: one line, nothing written.
    const nowhere = tempDir('vc-restore-');
    cleanup.push(async () => rmSync(nowhere, { recursive: true, force: true }));
    const badUrl = await runCommand(Restore, [
      archive,
      '--data-dir',
      nowhere,
      '--database-url',
      'postgres://postgres@127.0.0.1:1/none',
    ]);
    expect(badUrl.exit).not.toBe(0);
    expect(badUrl.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^Error: target database unreachable/)]);
    expect(existsSync(path.join(nowhere, 'voicechat.env'))).toBe(false);
    const unreachable = writeServerConfig(
      server,
      { VOICECHAT_DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none' },
      'unreachable.env',
    );
    const noDb = await runCommand(Backup, ['--config', unreachable, path.join(dir, 'y.vcbak')]);
    expect(noDb.exit).toBe(3);
    expect(noDb.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^Error: database unreachable/)]);
    expect(existsSync(path.join(dir, 'y.vcbak'))).toBe(false);
  });

  it('refuses a target that holds data, and one a running server uses', async () => {
    const intoSource = await runCommand(Restore, [archive, '--config', configPath]);
    expect(intoSource.exit).toBe(4);
    expect(intoSource.stderr.trim()).toMatch(/^Error: the target database holds data \(users/);

    // An empty database that a live node has registered in: refused unless --force.
    const target = await emptyTarget(TEST_DIALECT);
    const db =
      target.database?.db ?? createDb({ dialect: 'sqlite', sqliteFile: path.join(target.dataDir, 'voicechat.db') });
    const { migrateUp } = await import('../../src/db/migrator.js');
    await migrateUp(db);
    await db('server_nodes').insert({
      node_id: 'n1',
      hostname: 'h',
      pid: 1,
      started_at: Date.now(),
      last_seen_at: Date.now(),
      heartbeat_ms: 60_000,
      key_ids: '{}',
    });
    if (!target.database) await db.destroy();
    const busy = await runCommand(Restore, [archive, ...target.flags]);
    expect(busy.exit).toBe(4);
    expect(busy.stderr.trim()).toMatch(/a running server \(1 node\(s\)\) uses the target database/);
    const forced = await runCommand(Restore, [archive, ...target.flags, '--force']);
    expect(forced.exit, forced.stderr).toBe(0);
  });

  it('a backup without keys says so loudly; --keep prunes old archives in a directory', async () => {
    const out = tempDir('vc-backups-');
    cleanup.push(async () => rmSync(out, { recursive: true, force: true }));
    for (const stale of ['voicechat-20200101T000000Z.vcbak', 'voicechat-20200102T000000Z.vcbak', 'other.txt']) {
      writeFileSync(path.join(out, stale), 'x');
    }
    const res = await runCommand(Backup, ['--config', configPath, out, '--keep', '2', '--json']);
    expect(res.exit, res.stderr).toBe(0);
    expect(res.stderr).toMatch(/WARNING: this backup holds no keys.*can NOT decrypt MFA secrets or Megolm data/);
    const result = JSON.parse(res.stdout);
    expect(result.includes_keys).toBe(false);
    expect(path.basename(result.file)).toMatch(/^voicechat-\d{8}T\d{6}Z\.vcbak$/);
    expect(result.pruned).toEqual(['voicechat-20200101T000000Z.vcbak']);
    expect(existsSync(path.join(out, 'other.txt'))).toBe(true);
    expect(gunzipSync(readFileSync(result.file)).toString()).not.toContain('keys/keys.json');
  });
});
