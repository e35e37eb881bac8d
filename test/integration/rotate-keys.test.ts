/**
 * rotate-keys against a live server: the rotation runs as a real CLI process while the server serves
 * MFA logins over HTTP and Megolm reads through the server's own keyring (the Megolm HTTP endpoints
 * come with the E2EE feature; the reads use the decrypt function those endpoints will use). Zero
 * failed requests, no restart; SIGKILL mid-rotation then a rerun; JWT overlap; bad input.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import jwt from 'jsonwebtoken';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import RotateKeys from '../../commands/rotate-keys.js';
import { envelopeKeyId } from '../../src/crypto/aead.js';
import { Keyring, PURPOSES } from '../../src/crypto/keyring.js';
import { openMegolmSessionData } from '../../src/crypto/megolm.js';
import { login } from '../support/auth.js';
import { runCommand } from '../support/cli.js';
import { createTestDatabase, TEST_DIALECT, type TestDatabase } from '../support/db.js';
import { api } from '../support/factories.js';
import { type NodeProcess, startNodeProcess } from '../support/nodes.js';
import {
  OPS_PASSWORD,
  runCli,
  type SeededMegolm,
  seedMegolmSessions,
  seedMfaUsers,
  startCliClean,
  totpNow,
  writeConfig,
  writeServerConfig,
} from '../support/ops.js';
import { startTestServer, type TestServer } from '../support/server.js';

const FAST = { VOICECHAT_NODE_HEARTBEAT_MS: '200', VOICECHAT_RATE_LIMIT_SCALE: '100000', VOICECHAT_LOG_LEVEL: 'warn' };
const REDIS_URL = process.env.VOICECHAT_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

interface Load {
  stop(): Promise<void>;
  logins: number;
  reads: number;
  failures: string[];
}

/** MFA logins (one per user, TOTP steps are single-use) and Megolm reads in loops until stopped. */
function startLoad(
  loginVia: (username: string) => Promise<{ status: number; body: any }>,
  users: string[],
  megolmRead: () => Promise<{ read: number; failed: number }>,
): Load {
  let stopped = false;
  let next = 0;
  const load: Load = { logins: 0, reads: 0, failures: [], stop: async () => {} };
  const loginLoop = async () => {
    while (!stopped && next < users.length) {
      const username = users[next++] as string;
      const res = await loginVia(username);
      if (res.status === 200) load.logins++;
      else load.failures.push(`login ${username}: ${res.status} ${JSON.stringify(res.body)}`);
    }
  };
  const readLoop = async () => {
    while (!stopped) {
      const r = await megolmRead();
      load.reads += r.read;
      if (r.failed > 0) load.failures.push(`${r.failed} megolm reads failed`);
      await new Promise((res) => setTimeout(res, 5));
    }
  };
  const loops = [loginLoop(), loginLoop(), readLoop()];
  load.stop = async () => {
    stopped = true;
    await Promise.all(loops);
  };
  return load;
}

function readerFor(server: TestServer, seeded: SeededMegolm) {
  return async () => {
    let failed = 0;
    for (let i = 0; i < 50; i++) {
      const s = seeded.sessions[Math.floor(Math.random() * seeded.sessions.length)] as SeededMegolm['sessions'][number];
      const row = await server.db('megolm_sessions').where({ id: s.id }).first();
      try {
        if (
          openMegolmSessionData(server.ctx.keyring, row.channel_id, row.session_id, row.session_data).toString() !==
          s.data
        )
          failed++;
      } catch {
        failed++;
      }
    }
    return { read: 50, failed };
  };
}

async function expectAllUnder(
  database: TestDatabase | TestServer,
  keyring: Keyring,
  mfaKey: string,
  megolmKey: string,
) {
  const db = 'db' in database ? database.db : (database as TestServer).db;
  const users = await db('users').whereNotNull('mfa_secret').select('id', 'mfa_secret');
  expect(users.length).toBeGreaterThan(0);
  for (const u of users) {
    expect(envelopeKeyId(u.mfa_secret)).toBe(mfaKey);
    expect(keyring.open('mfa', u.mfa_secret, `mfa:${u.id}`).length).toBeGreaterThan(0);
  }
  const sessions = await db('megolm_sessions').select('*');
  for (const s of sessions) {
    expect(envelopeKeyId(s.session_data)).toBe(megolmKey);
    openMegolmSessionData(keyring, s.channel_id, s.session_id, s.session_data);
  }
}

const oneLine = (stderr: string) => stderr.trim().split('\n');

describe('rotate-keys on a live server', () => {
  let server: TestServer;
  let keyring: Keyring;
  let configPath: string;
  let users: string[];
  let megolm: SeededMegolm;

  beforeAll(async () => {
    keyring = Keyring.generate({ staged: true });
    server = await startTestServer({ keyring, env: FAST });
    configPath = writeServerConfig(server);
    users = await seedMfaUsers(server.db, keyring, 1000);
    const owner = await server.db('users').first('id');
    megolm = await seedMegolmSessions(server.db, keyring, 1000, owner.id);
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('refuses bad input with one line and a non-zero exit, changing nothing', async () => {
    const before = readFileSync(server.config.keyringFile, 'utf8');
    const bogus = await runCommand(RotateKeys, ['--config', configPath, '--purpose', 'bogus']);
    expect(bogus.exit).toBe(2);
    expect(oneLine(bogus.stderr)).toEqual(['Error: unknown purpose "bogus" (expected mfa, megolm, jwt or all)']);

    const dir = server.database.dir;
    const noKeys = writeConfig(
      dir,
      {
        VOICECHAT_DATA_DIR: dir,
        VOICECHAT_DATABASE_URL: server.database.databaseUrl,
        VOICECHAT_KEYRING: path.join(dir, 'nope.json'),
      },
      'nokeys.env',
    );
    const missing = await runCommand(RotateKeys, ['--config', noKeys]);
    expect(missing.exit).toBe(3);
    expect(oneLine(missing.stderr)).toHaveLength(1);
    expect(missing.stderr).toMatch(/keyring .*nope\.json not found/);

    const badDb = writeConfig(
      dir,
      {
        VOICECHAT_DATA_DIR: dir,
        VOICECHAT_DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none',
        VOICECHAT_KEYRING: server.config.keyringFile,
      },
      'baddb.env',
    );
    const unreachable = await runCommand(RotateKeys, ['--config', badDb]);
    expect(unreachable.exit).toBe(3);
    expect(oneLine(unreachable.stderr)).toHaveLength(1);
    expect(unreachable.stderr).toMatch(/database unreachable/);

    for (const r of [bogus, missing, unreachable]) {
      for (const p of PURPOSES) for (const e of keyring.toJSON()[p]) expect(r.stdout + r.stderr).not.toContain(e.key);
    }
    expect(readFileSync(server.config.keyringFile, 'utf8')).toBe(before);
    expect(await server.db('key_rotations').count({ n: '*' }).first()).toMatchObject({ n: expect.anything() });
    expect(Number((await server.db('key_rotations').count({ n: '*' }).first())?.n)).toBe(0);
  });

  it('rotates jwt, mfa and megolm while logins and reads run: zero failures, no restart, old keys retired', {
    timeout: 120_000,
  }, async () => {
    const from = Object.fromEntries(PURPOSES.map((p) => [p, keyring.active(p).id]));
    const to = Object.fromEntries(PURPOSES.map((p) => [p, keyring.staged(p)?.id as string]));
    // A token signed before the rotation.
    const early = await login(server, { username: users[0] as string, password: OPS_PASSWORD, mfa_code: totpNow() });
    expect(early.status).toBe(200);
    expect(jwt.decode(early.body.access_token, { complete: true })?.header.kid).toBe(from.jwt);

    const load = startLoad(
      (username) => login(server, { username, password: OPS_PASSWORD, mfa_code: totpNow() }),
      users.slice(1),
      readerFor(server, megolm),
    );
    const loginsBefore = load.logins;
    const res = await runCli(['rotate-keys', '--config', configPath, '--purpose', 'all', '--batch', '100', '--json']);
    const during = load.logins - loginsBefore;
    await load.stop();
    expect(res.exit, res.stderr).toBe(0);
    expect(load.failures).toEqual([]);
    expect(during).toBeGreaterThan(0);
    expect(load.reads).toBeGreaterThan(0);

    const outcomes = JSON.parse(res.stdout);
    expect(outcomes.map((o: any) => [o.purpose, o.status, o.from_key_id, o.to_key_id])).toEqual(
      PURPOSES.map((p) => [p, 'rotated', from[p], to[p]]),
    );
    expect(outcomes.find((o: any) => o.purpose === 'mfa').verified).toBe(1000);
    expect(outcomes.find((o: any) => o.purpose === 'megolm').verified).toBe(1000);

    // The running server switched without a restart, and every row is under the new keys.
    for (const p of PURPOSES) expect(server.ctx.keyring.active(p).id).toBe(to[p]);
    await expectAllUnder(server, server.ctx.keyring, to.mfa as string, to.megolm as string);
    const file = Keyring.fromJSON(JSON.parse(readFileSync(server.config.keyringFile, 'utf8')));
    for (const p of PURPOSES) {
      expect(file.active(p).id).toBe(to[p]);
      expect(file.entry(p, from[p] as string)).toMatchObject({ state: 'retired', retired_at: expect.any(String) });
    }

    // JWT: the early token still works; new tokens carry the new kid.
    expect(
      (
        await api(server, 'GET', '/auth/me', {
          user: { headers: { authorization: `Bearer ${early.body.access_token}` } },
        })
      ).status,
    ).toBe(200);
    const fresh = await login(server, {
      username: users.at(-1) as string,
      password: OPS_PASSWORD,
      mfa_code: totpNow(),
    });
    expect(fresh.status).toBe(200);
    expect(jwt.decode(fresh.body.access_token, { complete: true })?.header.kid).toBe(to.jwt);
    // The retired key signs nothing new: a token it "issued" after its retirement is refused.
    const sid = (jwt.decode(early.body.access_token) as { sid: string }).sid;
    const forged = jwt.sign(
      { sid, iat: Math.floor(Date.now() / 1000) + 5 },
      keyring.key('jwt', from.jwt as string) as Buffer,
      {
        algorithm: 'HS256',
        keyid: from.jwt,
        subject: early.body.user.id,
        expiresIn: 600,
      },
    );
    expect(
      (await api(server, 'GET', '/auth/me', { user: { headers: { authorization: `Bearer ${forged}` } } })).status,
    ).toBe(401);

    // Audited with ids and counts, never material.
    const audit = await server.db('audit_log').where({ action: 'keys.rotate' }).orderBy('id');
    expect(audit.map((a) => JSON.parse(a.metadata).purpose)).toEqual([...PURPOSES]);
    expect(JSON.parse(audit[1].metadata)).toMatchObject({ from_key_id: from.mfa, to_key_id: to.mfa, verified: 1000 });
    const allAudit = JSON.stringify(audit);
    for (const p of PURPOSES) for (const e of keyring.toJSON()[p]) expect(allAudit).not.toContain(e.key);

    // Nothing staged any more: the next run stages a key and says what to restart (exit 4).
    const again = await runCommand(RotateKeys, ['--config', configPath, '--purpose', 'mfa']);
    expect(again.exit).toBe(4);
    expect(oneLine(again.stderr)).toHaveLength(1);
    expect(again.stderr).toMatch(/staged mfa key mfa_[0-9a-f]{8}; restart the service/);
    // The server has not loaded that key, so a rotation to it is refused and names the node.
    const refused = await runCommand(RotateKeys, ['--config', configPath, '--purpose', 'mfa']);
    expect(refused.exit).toBe(4);
    expect(refused.stderr).toMatch(/server node .* started before mfa key .* was staged; restart/);
    // SIGHUP's reload (plain installs read the file) picks the staged key up without a restart.
    expect(await server.app.reloadKeys()).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    const dry = await runCommand(RotateKeys, ['--config', configPath, '--purpose', 'mfa', '--dry-run', '--json']);
    expect(dry.exit, dry.stderr).toBe(0);
    expect(JSON.parse(dry.stdout)[0]).toMatchObject({ status: 'would-rotate', by_key: { [to.mfa as string]: 1000 } });

    // --purge drops retired keys older than 90 days (and nothing younger).
    const nothing = await runCommand(RotateKeys, ['--config', configPath, '--purge', '--json']);
    expect(JSON.parse(nothing.stdout).every((p: { removed: string[] }) => p.removed.length === 0)).toBe(true);
    const data = JSON.parse(readFileSync(server.config.keyringFile, 'utf8'));
    for (const k of data.mfa) if (k.id === from.mfa) k.retired_at = '2020-01-01T00:00:00.000Z';
    Keyring.fromJSON(data).save(server.config.keyringFile);
    await server
      .db('key_rotations')
      .where({ from_key_id: from.mfa })
      .update({ finished_at: Date.parse('2020-01-01') });
    const purged = await runCommand(RotateKeys, ['--config', configPath, '--purge', '--purpose', 'mfa', '--json']);
    expect(purged.exit, purged.stderr).toBe(0);
    expect(JSON.parse(purged.stdout)).toEqual([{ purpose: 'mfa', removed: [from.mfa] }]);
    const after = Keyring.fromJSON(JSON.parse(readFileSync(server.config.keyringFile, 'utf8')));
    expect(after.entry('mfa', from.mfa as string)).toBeUndefined();
    expect(after.active('mfa').id).toBe(to.mfa);
  });
});

describe('rotate-keys killed mid-run', () => {
  let server: TestServer;
  let keyring: Keyring;
  let configPath: string;
  let users: string[];

  beforeAll(async () => {
    keyring = Keyring.generate({ staged: true });
    server = await startTestServer({ keyring, env: FAST });
    configPath = writeServerConfig(server);
    users = await seedMfaUsers(server.db, keyring, 3000, 'crash');
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('resumes after SIGKILL: every row readable throughout, then all under the new key, logins work', {
    timeout: 120_000,
  }, async () => {
    const to = keyring.staged('mfa')?.id as string;
    const cli = startCliClean(['rotate-keys', '--config', configPath, '--purpose', 'mfa', '--batch', '20'], {});
    let row: any;
    for (;;) {
      row = await server.db('key_rotations').where({ purpose: 'mfa' }).first();
      if (row && Number(row.rows_done) >= 200) break;
      if (cli.child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    cli.child.kill('SIGKILL');
    const killed = await cli.done;
    expect(killed.signal).toBe('SIGKILL');
    row = await server.db('key_rotations').where({ purpose: 'mfa' }).first();
    expect(row.state).toBe('running');
    expect(Number(row.rows_done)).toBeLessThan(3000);
    // Mid-rotation: rows are under either key, and every one opens with the server's live keyring.
    const mixed = await server.db('users').whereNotNull('mfa_secret').select('id', 'mfa_secret');
    const kids = new Set(mixed.map((u) => envelopeKeyId(u.mfa_secret)));
    expect(kids).toEqual(new Set([keyring.active('mfa').id, to]));
    for (const u of mixed) server.ctx.keyring.open('mfa', u.mfa_secret, `mfa:${u.id}`);
    expect(
      (await login(server, { username: users[0] as string, password: OPS_PASSWORD, mfa_code: totpNow() })).status,
    ).toBe(200);

    const rerun = await runCli(['rotate-keys', '--config', configPath, '--purpose', 'mfa', '--batch', '500', '--json']);
    expect(rerun.exit, rerun.stderr).toBe(0);
    expect(JSON.parse(rerun.stdout)[0]).toMatchObject({ status: 'resumed', to_key_id: to, verified: 3000 });
    const after = await server.db('users').whereNotNull('mfa_secret').select('id', 'mfa_secret');
    for (const u of after) {
      expect(envelopeKeyId(u.mfa_secret)).toBe(to);
      server.ctx.keyring.open('mfa', u.mfa_secret, `mfa:${u.id}`);
    }
    expect(
      (await login(server, { username: users[1] as string, password: OPS_PASSWORD, mfa_code: totpNow() })).status,
    ).toBe(200);
    // The server learns of the retirement from the database on its next heartbeat (200 ms here); a
    // loaded machine can delay that tick, so wait for it rather than read it once.
    await vi.waitFor(() => expect(server.ctx.keyring.entry('mfa', keyring.active('mfa').id)?.state).toBe('retired'), {
      timeout: 10_000,
      interval: 50,
    });
  });
});

describe.runIf(TEST_DIALECT === 'pg')('rotate-keys with two server processes on Postgres + Redis', () => {
  let database: TestDatabase;
  let nodes: NodeProcess[] = [];
  let keyring: Keyring;
  let configPath: string;
  let users: string[];
  const prefix = `vcrot${Math.random().toString(36).slice(2, 8)}`;

  beforeAll(async () => {
    database = await createTestDatabase();
    keyring = Keyring.generate({ staged: true });
    const keyringFile = path.join(database.dir, 'keys.json');
    keyring.save(keyringFile);
    users = await seedMfaUsers(database.db, keyring, 600, 'two');
    const owner = await database.db('users').first('id');
    await seedMegolmSessions(database.db, keyring, 600, owner.id);
    const env = {
      VOICECHAT_DATA_DIR: database.dir,
      VOICECHAT_DATABASE_URL: database.databaseUrl,
      VOICECHAT_KEYRING: keyringFile,
      REDIS_URL,
      VOICECHAT_REDIS_PREFIX: prefix,
      VOICECHAT_RATE_LIMIT_SCALE: '100000',
      VOICECHAT_LOG_LEVEL: 'warn',
      // A long heartbeat: the nodes switch because Redis tells them, not because they poll.
      VOICECHAT_NODE_HEARTBEAT_MS: '60000',
    };
    nodes = await Promise.all([startNodeProcess(env), startNodeProcess(env)]);
    configPath = writeConfig(database.dir, env);
  });
  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    await database?.drop();
  });

  it('zero failed logins or reads on either node; both switch without a restart', { timeout: 120_000 }, async () => {
    let turn = 0;
    const node = () => nodes[turn++ % 2] as NodeProcess;
    const viaHttp = async (username: string) => {
      const n = node();
      const res = await fetch(`${n.url}/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username, password: OPS_PASSWORD, mfa_code: totpNow() }),
      });
      return { status: res.status, body: await res.json() };
    };
    const load = startLoad(viaHttp, users, () => node().megolmRead(50));
    const started = Date.now();
    const res = await runCli(['rotate-keys', '--config', configPath, '--purpose', 'all', '--batch', '100', '--json']);
    await load.stop();
    expect(res.exit, res.stderr).toBe(0);
    expect(Date.now() - started).toBeLessThan(45_000); // did not wait for a 60 s heartbeat
    expect(load.failures).toEqual([]);
    expect(load.logins).toBeGreaterThan(0);
    for (const n of nodes) expect((await n.megolmRead(10)).active).toBe(keyring.staged('megolm')?.id);
    const file = Keyring.fromJSON(JSON.parse(readFileSync(path.join(database.dir, 'keys.json'), 'utf8')));
    await expectAllUnder(database, file, keyring.staged('mfa')?.id as string, keyring.staged('megolm')?.id as string);
  });
});
