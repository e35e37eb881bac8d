/**
 * bench:ops — operations at scale on a database of 100,000 MFA users, 100,000 Megolm sessions,
 * 1,000,000 messages and a 500,000-row audit trail:
 *   - key rotation (mfa, then megolm) as the real CLI process, rows/s, while a server process serves
 *     MFA logins in a loop (login latency p50/p99 before and during rotation);
 *   - `audit --verify` rows/s;
 *   - backup and restore (same dialect) time and archive size.
 * Knobs: BENCH_DIALECT=sqlite|pg, BENCH_USERS, BENCH_MEGOLM, BENCH_MESSAGES, BENCH_AUDIT, BENCH_BATCH.
 * Prints a table and JSON. Rate limits are scaled up, never switched off.
 */
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import path from 'node:path';
import { verifyAuditChain } from '../src/audit/verify.js';
import { rowHash } from '../src/audit/writer.js';
import { backup, restore } from '../src/backup/service.js';
import { canonicalJson } from '../src/canonical-json.js';
import { loadConfig } from '../src/config/index.js';
import { Keyring } from '../src/crypto/keyring.js';
import { newId } from '../src/ids.js';
import { createTestDatabase, tempDir } from '../test/support/db.js';
import { startNodeProcess } from '../test/support/nodes.js';
import { OPS_PASSWORD, seedMegolmSessions, seedMfaUsers, totpNow, writeConfig } from '../test/support/ops.js';

const DIALECT = (process.env.BENCH_DIALECT ?? 'sqlite') as 'sqlite' | 'pg';
const USERS = Number(process.env.BENCH_USERS ?? 100_000);
const MEGOLM = Number(process.env.BENCH_MEGOLM ?? 100_000);
const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 1_000_000);
const AUDIT = Number(process.env.BENCH_AUDIT ?? 500_000);
const BATCH = process.env.BENCH_BATCH ?? '5000';

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number) : Number.NaN;
};
const ms = (t0: number) => Math.round(performance.now() - t0);
const log = (...a: unknown[]) => console.error('[bench:ops]', ...a);

function runCli(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.resolve('bin/dev.js'), ...args], {
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function main() {
  const database = await createTestDatabase({ dialect: DIALECT });
  const { db } = database;
  const keyring = Keyring.generate({ staged: true });
  const keyringFile = path.join(database.dir, 'keys.json');
  keyring.save(keyringFile);
  const t0 = performance.now();
  const users = await seedMfaUsers(db, keyring, USERS, 'b');
  const owner = (await db('users').first('id')).id as string;
  const megolm = await seedMegolmSessions(db, keyring, MEGOLM, owner);
  const channelId = megolm.channelIds[0] as string;
  // Messages and a hash-chained audit trail, written in bulk.
  const now = Date.now();
  await db.transaction(async (trx) => {
    for (let i = 0; i < MESSAGES; i += 500) {
      const rows = [];
      for (let j = i; j < Math.min(MESSAGES, i + 500); j++) {
        rows.push({
          id: newId(),
          channel_id: channelId,
          author_id: owner,
          content: `message number ${j} ${'x'.repeat(40)}`,
          created_at: now,
        });
      }
      await trx('messages').insert(rows);
    }
  });
  let prev = '0'.repeat(64);
  await db.transaction(async (trx) => {
    for (let i = 1; i <= AUDIT; i += 500) {
      const rows = [];
      for (let id = i; id < Math.min(AUDIT + 1, i + 500); id++) {
        const base = {
          id,
          user_id: owner,
          action: 'auth.login',
          resource_type: 'user',
          resource_id: owner,
          ip_address: '127.0.0.1',
          metadata: canonicalJson({ n: id }),
          created_at: now,
        };
        const hash = rowHash(prev, base);
        rows.push({ ...base, prev_hash: prev, hash });
        prev = hash;
      }
      await trx('audit_log').insert(rows);
    }
    await trx('audit_chain_head').where({ id: 1 }).update({ last_id: AUDIT, last_hash: prev });
  });
  const seedMs = ms(t0);
  log(
    `seeded ${USERS} MFA users, ${MEGOLM} megolm sessions, ${MESSAGES} messages, ${AUDIT} audit rows in ${seedMs} ms`,
  );

  const env = {
    VOICECHAT_DATA_DIR: database.dir,
    VOICECHAT_DATABASE_URL: database.databaseUrl,
    VOICECHAT_KEYRING: keyringFile,
    VOICECHAT_RATE_LIMIT_SCALE: '1000000',
    VOICECHAT_LOG_LEVEL: 'warn',
    VOICECHAT_NODE_HEARTBEAT_MS: '250',
  };
  const configPath = writeConfig(database.dir, env);
  const node = await startNodeProcess(env);

  // A login loop (one client), each login a different user (TOTP steps are single-use).
  let next = 0;
  let phase: 'before' | 'during' | 'after' = 'before';
  const lat: Record<string, number[]> = { before: [], during: [], after: [] };
  let failures = 0;
  let stop = false;
  const client = async () => {
    while (!stop && next < users.length) {
      const username = users[next++] as string;
      const s = performance.now();
      const res = await fetch(`${node.url}/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username, password: OPS_PASSWORD, mfa_code: totpNow() }),
      });
      await res.arrayBuffer();
      (lat[phase] as number[]).push(performance.now() - s);
      if (res.status !== 200) failures++;
    }
  };
  const clients = [client()];
  await new Promise((r) => setTimeout(r, 5000));
  phase = 'during';
  const rotations: Record<string, { rows: number; duration_ms: number; rows_per_s: number }> = {};
  for (const purpose of ['mfa', 'megolm']) {
    const r = await runCli(
      ['rotate-keys', '--config', configPath, '--purpose', purpose, '--batch', BATCH, '--json'],
      env,
    );
    if (r.code !== 0) throw new Error(`rotate-keys ${purpose} failed: ${r.stderr}`);
    const o = JSON.parse(r.stdout)[0];
    rotations[purpose] = {
      rows: o.verified,
      duration_ms: o.duration_ms,
      rows_per_s: Math.round((o.verified / o.duration_ms) * 1000),
    };
    log(`rotated ${purpose}: ${o.verified} rows in ${o.duration_ms} ms`);
  }
  phase = 'after';
  await new Promise((r) => setTimeout(r, 2000));
  stop = true;
  await Promise.all(clients);
  await node.stop();

  const tv = performance.now();
  const chain = await verifyAuditChain(db);
  const verifyMs = ms(tv);
  if (!chain.ok) throw new Error('audit chain did not verify');

  const config = loadConfig({ configPath, env: {} });
  const archive = path.join(database.dir, 'bench.vcbak');
  const tb = performance.now();
  const b = await backup(config, db, archive, { includeKeys: true });
  const backupMs = ms(tb);
  const target = tempDir('vc-bench-restore-');
  let targetUrl = '';
  let dropTarget = async () => {};
  if (DIALECT === 'pg') {
    const t = await createTestDatabase({ dialect: 'pg', migrate: false });
    targetUrl = t.databaseUrl;
    dropTarget = () => t.drop();
  }
  const tr = performance.now();
  await restore(
    archive,
    {
      dialect: DIALECT,
      databaseUrl: targetUrl,
      sqliteFile: path.join(target, 'voicechat.db'),
      dataDir: target,
      configPath: path.join(target, 'voicechat.env'),
    },
    { force: false },
  );
  const restoreMs = ms(tr);
  await dropTarget();
  rmSync(target, { recursive: true, force: true });
  await database.drop();

  const result = {
    machine: {
      cpus: cpus().length,
      model: cpus()[0]?.model,
      mem_gb: Math.round(totalmem() / 2 ** 30),
      node: process.version,
    },
    dialect: DIALECT,
    data: { mfa_users: USERS, megolm_sessions: MEGOLM, messages: MESSAGES, audit_rows: AUDIT, seed_ms: seedMs },
    rotation: rotations,
    logins: {
      failures,
      before: {
        n: lat.before?.length,
        p50_ms: +pct(lat.before ?? [], 50).toFixed(1),
        p99_ms: +pct(lat.before ?? [], 99).toFixed(1),
      },
      during: {
        n: lat.during?.length,
        p50_ms: +pct(lat.during ?? [], 50).toFixed(1),
        p99_ms: +pct(lat.during ?? [], 99).toFixed(1),
      },
    },
    audit_verify: { rows: chain.rows, ms: verifyMs, rows_per_s: Math.round((chain.rows / verifyMs) * 1000) },
    backup: { ms: backupMs, bytes: b.bytes, rows: Object.values(b.tables).reduce((x, y) => x + y, 0) },
    restore: { ms: restoreMs },
  };
  console.log('');
  console.log(`bench:ops (${DIALECT}, ${result.machine.cpus} cpu ${result.machine.model}, node ${process.version})`);
  console.log(
    `  rotation mfa      ${rotations.mfa?.rows} rows  ${rotations.mfa?.duration_ms} ms  ${rotations.mfa?.rows_per_s} rows/s`,
  );
  console.log(
    `  rotation megolm   ${rotations.megolm?.rows} rows  ${rotations.megolm?.duration_ms} ms  ${rotations.megolm?.rows_per_s} rows/s`,
  );
  console.log(
    `  login p50/p99     before ${result.logins.before.p50_ms}/${result.logins.before.p99_ms} ms, during rotation ${result.logins.during.p50_ms}/${result.logins.during.p99_ms} ms, failures ${failures}`,
  );
  console.log(`  audit --verify    ${chain.rows} rows  ${verifyMs} ms  ${result.audit_verify.rows_per_s} rows/s`);
  console.log(`  backup            ${result.backup.rows} rows  ${backupMs} ms  ${(b.bytes / 2 ** 20).toFixed(1)} MiB`);
  console.log(`  restore           ${restoreMs} ms`);
  console.log(JSON.stringify(result));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
