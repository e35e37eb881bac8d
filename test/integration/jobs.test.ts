/**
 * Scheduled jobs on a real database: each removes exactly the rows past its cutoff and nothing else,
 * is idempotent, shows in job_runs, `voicechat jobs` and /metrics; two nodes never run one job at once.
 */
import { existsSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Audit from '../../commands/audit.js';
import JobsList from '../../commands/jobs/list.js';
import JobsRun from '../../commands/jobs/run.js';
import { verifyAuditChain } from '../../src/audit/verify.js';
import { recordAudit } from '../../src/audit/writer.js';
import { createDb } from '../../src/db/knex.js';
import { newId } from '../../src/ids.js';
import { auditRetention } from '../../src/jobs/audit-retention.js';
import { deleteExpiredToDeviceMessages, deleteStaleOneTimeKeys } from '../../src/jobs/e2ee-cleanup.js';
import { expiredResetTokens } from '../../src/jobs/expired-reset-tokens.js';
import { expiredSessions } from '../../src/jobs/expired-sessions.js';
import { DAY_MS, type Job, type JobDeps } from '../../src/jobs/job.js';
import { orphanUploads } from '../../src/jobs/orphan-uploads.js';
import { runJob } from '../../src/jobs/runner.js';
import { sqliteMaintenance } from '../../src/jobs/sqlite-maintenance.js';
import { createLogger } from '../../src/logger.js';
import { newStorageName, uploadDir } from '../../src/uploads/storage.js';
import { runCommand } from '../support/cli.js';
import { api, createUser } from '../support/factories.js';
import { writeServerConfig } from '../support/ops.js';
import { startTestServer, type TestServer } from '../support/server.js';

const NOW = Date.now();
const H = 3_600_000;

describe('scheduled jobs', () => {
  let server: TestServer;
  let deps: JobDeps;
  let userId: string;
  let channelId: string;
  let configPath: string;

  beforeAll(async () => {
    server = await startTestServer({ env: { VOICECHAT_LOG_LEVEL: 'warn' } });
    deps = { db: server.db, dialect: server.ctx.dialect, config: server.config, logger: createLogger('silent') };
    userId = (await createUser(server)).id;
    channelId = newId();
    await server
      .db('channels')
      .insert({ id: channelId, type: 'group_dm', position: 0, created_at: NOW, updated_at: NOW });
    configPath = writeServerConfig(server);
  });
  afterAll(async () => {
    await server?.stop();
  });

  const ids = async (table: string) => (await server.db(table).select('id').orderBy('id')).map((r) => r.id).sort();

  it('expired-sessions removes sessions past expiry only', async () => {
    const mk = (expires: number) => ({
      id: newId(),
      family_id: newId(),
      user_id: userId,
      token_hash: newId().replace(/-/g, '').padEnd(64, '0'),
      created_at: expires - 30 * DAY_MS,
      expires_at: expires,
    });
    const old = [mk(NOW - H), mk(NOW - 1)];
    const live = [mk(NOW + 1), mk(NOW + DAY_MS)];
    await server.db('sessions').insert([...old, ...live]);
    const keep = (await ids('sessions')).filter((id) => !old.some((o) => o.id === id));
    const r = await runJob(deps, expiredSessions, { now: () => NOW });
    expect(r).toMatchObject({ status: 'ok', result: { removed: 2 } });
    expect(await ids('sessions')).toEqual(keep);
    expect(await runJob(deps, expiredSessions, { now: () => NOW })).toMatchObject({ result: { removed: 0 } });
  });

  it('expired-reset-tokens removes tokens past expiry only', async () => {
    const mk = (expires: number) => ({
      id: newId(),
      user_id: userId,
      token_hash: newId().replace(/-/g, '').padEnd(64, '1'),
      created_at: expires - H,
      expires_at: expires,
    });
    const rows = [mk(NOW - 5), mk(NOW + 5), mk(NOW + H)];
    await server.db('password_reset_tokens').insert(rows);
    expect(await runJob(deps, expiredResetTokens, { now: () => NOW })).toMatchObject({ result: { removed: 1 } });
    expect(await ids('password_reset_tokens')).toEqual([rows[1]?.id, rows[2]?.id].sort());
  });

  it('E2EE cleanup: to-device messages past 30 days or their expiry, one-time keys past 30 days (idempotent)', async () => {
    const msg = (created: number, expires: number) => ({
      id: newId(),
      recipient_user_id: userId,
      recipient_device_id: 'DEV',
      sender_user_id: userId,
      sender_device_id: 'DEV2',
      type: 'm.olm',
      ciphertext: 'x',
      created_at: created,
      expires_at: expires,
    });
    const gone = [msg(NOW - 30 * DAY_MS - 1, NOW + DAY_MS), msg(NOW - DAY_MS, NOW - 1)];
    const kept = [msg(NOW - 30 * DAY_MS + 1000, NOW + DAY_MS), msg(NOW, NOW + 30 * DAY_MS)];
    await server.db('to_device_messages').insert([...gone, ...kept]);
    expect(await deleteExpiredToDeviceMessages(server.db, NOW)).toBe(2);
    expect(await deleteExpiredToDeviceMessages(server.db, NOW)).toBe(0);
    expect(await ids('to_device_messages')).toEqual(kept.map((m) => m.id).sort());

    const deviceId = newId();
    await server.db('devices').insert({
      id: deviceId,
      user_id: userId,
      device_id: 'DEV',
      curve25519: 'c'.repeat(43),
      ed25519: 'e'.repeat(43),
      created_at: NOW,
    });
    const otk = (created: number, n: number) => ({
      id: newId(),
      device_id: deviceId,
      key_id: `k${n}`,
      key: 'k'.repeat(43),
      created_at: created,
    });
    const staleKeys = [otk(NOW - 31 * DAY_MS, 1), otk(NOW - 30 * DAY_MS - 1, 2)];
    const freshKeys = [otk(NOW - 29 * DAY_MS, 3), otk(NOW, 4)];
    await server.db('one_time_keys').insert([...staleKeys, ...freshKeys]);
    expect(await deleteStaleOneTimeKeys(server.db, NOW)).toBe(2);
    expect(await deleteStaleOneTimeKeys(server.db, NOW)).toBe(0);
    expect(await ids('one_time_keys')).toEqual(freshKeys.map((k) => k.id).sort());
  });

  it('orphan-uploads removes unlinked uploads older than 24 h and stray old files, nothing else', async () => {
    const dir = uploadDir(server.config.dataDir);
    const messageId = newId();
    await server
      .db('messages')
      // The channel is a group DM: its messages must be encrypted (dm_requires_encryption).
      .insert({
        id: messageId,
        channel_id: channelId,
        author_id: userId,
        content: 'hi',
        encrypted: true,
        nonce: 'n',
        created_at: NOW,
      });
    const att = (created: number, linked: boolean) => {
      const storage_name = newStorageName();
      writeFileSync(path.join(dir, storage_name), 'data');
      return {
        id: newId(),
        channel_id: channelId,
        message_id: linked ? messageId : null,
        uploader_id: userId,
        filename: 'a.txt',
        storage_name,
        mime_type: 'text/plain',
        size_bytes: 4,
        created_at: created,
      };
    };
    const orphanOld = att(NOW - 25 * H, false);
    const orphanNew = att(NOW - 23 * H, false);
    const linkedOld = att(NOW - 48 * H, true);
    await server.db('attachments').insert([orphanOld, orphanNew, linkedOld]);
    const strayOld = path.join(dir, newStorageName());
    const strayNew = path.join(dir, newStorageName());
    writeFileSync(strayOld, 'partial');
    writeFileSync(strayNew, 'uploading');
    const dayAgo = (NOW - 25 * H) / 1000;
    utimesSync(strayOld, dayAgo, dayAgo);
    // Files of rows are never strays, however old.
    utimesSync(path.join(dir, linkedOld.storage_name), dayAgo, dayAgo);

    expect(await runJob(deps, orphanUploads, { now: () => NOW })).toMatchObject({
      result: { removed: 1, stray_files: 1 },
    });
    expect((await server.db('attachments').select('id')).map((r) => r.id).sort()).toEqual(
      [orphanNew.id, linkedOld.id].sort(),
    );
    expect(existsSync(path.join(dir, orphanOld.storage_name))).toBe(false);
    expect(existsSync(strayOld)).toBe(false);
    for (const f of [orphanNew.storage_name, linkedOld.storage_name]) expect(existsSync(path.join(dir, f))).toBe(true);
    expect(existsSync(strayNew)).toBe(true);
    expect(await runJob(deps, orphanUploads, { now: () => NOW })).toMatchObject({
      result: { removed: 0, stray_files: 0 },
    });
  });

  it('audit-retention prunes rows past the retention period behind a checkpoint; --verify still passes', async () => {
    const early: number[] = [];
    for (let i = 0; i < 5; i++)
      early.push(Number((await recordAudit(server.db, { action: 'test.early', metadata: { i } })).id));
    await new Promise((r) => setTimeout(r, 20));
    const mid = Date.now();
    await new Promise((r) => setTimeout(r, 20));
    const late: number[] = [];
    for (let i = 0; i < 3; i++)
      late.push(Number((await recordAudit(server.db, { action: 'test.late', metadata: { i } })).id));
    const before = Number((await server.db('audit_log').count({ n: '*' }).first())?.n);
    const now = mid + server.config.auditRetentionDays * DAY_MS;
    const r = await runJob(deps, auditRetention, { now: () => now });
    expect(r.status).toBe('ok');
    const removed = (r as unknown as { result: { removed: number } }).result.removed;
    expect(removed).toBe(before - late.length);
    const left = await server.db('audit_log').orderBy('id').select('id', 'action');
    expect(left.map((x) => x.action)).toEqual(['test.late', 'test.late', 'test.late', 'audit.checkpoint']);
    expect(await verifyAuditChain(server.db)).toMatchObject({ ok: true, rows: 4, firstId: late[0] });
    const cli = await runCommand(Audit, ['--config', configPath, '--verify']);
    expect(cli.exit, cli.stderr).toBe(0);
    expect(cli.stdout).toMatch(/^chain intact, 4 rows/);
    // Idempotent: nothing else is old enough.
    expect(await runJob(deps, auditRetention, { now: () => now })).toMatchObject({ result: { removed: 0 } });
    // A pruned log still detects a deleted row.
    await server.db('audit_log').where({ id: late[1] }).delete();
    const broken = await runCommand(Audit, ['--config', configPath, '--verify']);
    expect(broken.exit).toBe(1);
    expect(broken.stderr.trim()).toBe(
      `Error: audit chain broken at row ${late[1]}: row ${late[1]} is missing (1 rows verified before it)`,
    );
  });

  it('sqlite-maintenance checkpoints the WAL on SQLite and does nothing on Postgres', async () => {
    const r = await runJob(deps, sqliteMaintenance);
    expect(r.status).toBe('ok');
    if (server.ctx.dialect === 'pg') expect(r).toMatchObject({ result: { skipped: 1 } });
    else expect(r).toMatchObject({ result: { wal_pages: expect.any(Number), checkpointed: expect.any(Number) } });
  });

  it("two nodes never run the same job at once; a dead holder's lease expires", async () => {
    // A second "node": its own connection pool to the same database.
    const other = createDb({
      dialect: server.ctx.dialect,
      sqliteFile: server.database.sqliteFile,
      databaseUrl: server.database.databaseUrl,
    });
    let inside = 0;
    let maxInside = 0;
    const slow: Job = {
      name: 'test-slow',
      schedule: '* * * * *',
      summary: 'test',
      async run() {
        inside++;
        maxInside = Math.max(maxInside, inside);
        await new Promise((r) => setTimeout(r, 300));
        inside--;
        return { n: 1 };
      },
    };
    try {
      const results = await Promise.all([
        runJob(deps, slow, { owner: 'node-a' }),
        runJob({ ...deps, db: other }, slow, { owner: 'node-b' }),
        runJob({ ...deps, db: other }, slow, { owner: 'node-c' }),
      ]);
      expect(results.map((r) => r.status).sort()).toEqual(['ok', 'skipped', 'skipped']);
      expect(maxInside).toBe(1);
      // A holder that died mid-run: its lease blocks others until it expires.
      await server
        .db('job_runs')
        .where({ name: 'test-slow' })
        .update({ lease_owner: 'dead', lease_until: Date.now() + 60_000 });
      expect((await runJob(deps, slow)).status).toBe('skipped');
      await server
        .db('job_runs')
        .where({ name: 'test-slow' })
        .update({ lease_until: Date.now() - 1 });
      expect((await runJob(deps, slow)).status).toBe('ok');
    } finally {
      await other.destroy();
    }
  });

  it('runs show in `voicechat jobs list`, `jobs run` and /metrics', async () => {
    await server.db('sessions').insert({
      id: newId(),
      family_id: newId(),
      user_id: userId,
      token_hash: 'f'.repeat(64),
      created_at: NOW - 2 * H,
      expires_at: NOW - H,
    });
    await runJob({ ...deps, metrics: server.ctx.metrics }, expiredSessions, { now: () => NOW });
    const metrics = await api(server, 'GET', '/metrics');
    expect(metrics.body).toMatch(/voicechat_job_runs_total\{job="expired-sessions",status="ok"\} 1/);
    expect(metrics.body).toMatch(/voicechat_job_items_total\{job="expired-sessions",what="removed"\} 1/);

    const list = await runCommand(JobsList, ['--config', configPath, '--json']);
    expect(list.exit, list.stderr).toBe(0);
    const jobs = JSON.parse(list.stdout);
    expect(jobs.map((j: { name: string }) => j.name)).toContain('audit-retention');
    expect(jobs.find((j: { name: string }) => j.name === 'orphan-uploads')).toMatchObject({
      last_status: 'ok',
      last_result: { removed: 0, stray_files: 0 },
    });
    const run = await runCommand(JobsRun, ['--config', configPath, 'expired-reset-tokens']);
    expect(run.exit, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^expired-reset-tokens: removed=\d+ \(\d+ ms\)$/m);
    const unknown = await runCommand(JobsRun, ['--config', configPath, 'nope']);
    expect(unknown.exit).toBe(5);
    expect(unknown.stderr.trim().split('\n')).toHaveLength(1);
    // A job held by a node is refused, not run twice.
    await server
      .db('job_runs')
      .where({ name: 'expired-reset-tokens' })
      .update({ lease_owner: 'node-x', lease_until: Date.now() + 60_000 });
    const busy = await runCommand(JobsRun, ['--config', configPath, 'expired-reset-tokens']);
    expect(busy.exit).toBe(4);
    expect(busy.stderr.trim()).toBe('Error: expired-reset-tokens is already running (node-x)');
  });
});
