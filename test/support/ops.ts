/**
 * Operations fixtures: a populated database (MFA users, Megolm sessions) written through the same
 * crypto helpers the server uses, and config files for CLI commands run against a test server.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import argon2 from 'argon2';
import { authenticator } from 'otplib';
import { formatEnvFile } from '../../src/config/index.js';
import type { Keyring } from '../../src/crypto/keyring.js';
import { sealMegolmSessionData } from '../../src/crypto/megolm.js';
import type { Db } from '../../src/db/knex.js';
import { newId, nowMs } from '../../src/ids.js';
import { startCli } from './cli.js';
import type { TestServer } from './server.js';

export const OPS_PASSWORD = 'correct horse battery staple';
/** One TOTP secret for every seeded user (each row's ciphertext is still bound to its user id). */
export const TOTP_SECRET = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
export const totpNow = (): string => authenticator.generate(TOTP_SECRET);

let hash: Promise<string> | undefined;
const passwordHash = () =>
  (hash ??= argon2.hash(OPS_PASSWORD, { type: argon2.argon2id, memoryCost: 19456, timeCost: 2, parallelism: 1 }));

async function insertChunks(db: Db, table: string, rows: Record<string, unknown>[]): Promise<void> {
  const size = Math.max(1, Math.floor(900 / Object.keys(rows[0] ?? { a: 1 }).length));
  for (let i = 0; i < rows.length; i += size) await db(table).insert(rows.slice(i, i + size));
}

/** `n` users with MFA on (secret sealed under the keyring's active mfa key); returns their usernames. */
export async function seedMfaUsers(db: Db, keyring: Keyring, n: number, prefix = 'mfa'): Promise<string[]> {
  const now = nowMs();
  const password_hash = await passwordHash();
  const rows = Array.from({ length: n }, (_, i) => {
    const id = newId();
    return {
      id,
      username: `${prefix}_${i}`,
      password_hash,
      mfa_enabled: true,
      mfa_secret: keyring.seal('mfa', TOTP_SECRET, `mfa:${id}`),
      created_at: now,
      updated_at: now,
    };
  });
  await insertChunks(db, 'users', rows);
  return rows.map((r) => r.username);
}

export interface SeededMegolm {
  channelIds: string[];
  /** `data` is what each session decrypts to. */
  sessions: { id: string; channel_id: string; session_id: string; data: string }[];
}

/** `n` Megolm session rows over a few group-DM channels, sealed with the server's own helper. */
export async function seedMegolmSessions(db: Db, keyring: Keyring, n: number, senderId: string): Promise<SeededMegolm> {
  const now = nowMs();
  const channelIds = Array.from({ length: 8 }, () => newId());
  await db('channels').insert(
    channelIds.map((id) => ({ id, type: 'group_dm', position: 0, created_at: now, updated_at: now })),
  );
  const sessions = Array.from({ length: n }, (_, i) => ({
    id: newId(),
    channel_id: channelIds[i % channelIds.length] as string,
    session_id: `s${i}`,
    data: `megolm session pickle ${i}`,
  }));
  await insertChunks(
    db,
    'megolm_sessions',
    sessions.map((s) => ({
      id: s.id,
      channel_id: s.channel_id,
      session_id: s.session_id,
      sender_user_id: senderId,
      sender_key: 'A'.repeat(43),
      session_data: sealMegolmSessionData(keyring, s.channel_id, s.session_id, s.data),
      created_at: now,
    })),
  );
  return { channelIds, sessions };
}

/** Writes a voicechat.env for CLI child processes and returns its path. */
export function writeConfig(dir: string, values: Record<string, string>, name = 'voicechat.env'): string {
  const file = path.join(dir, name);
  writeFileSync(file, formatEnvFile(values, ['test config']), { mode: 0o600 });
  return file;
}

/** Spawns the CLI with only the environment given (no inherited VOICECHAT_*). */
export const startCliClean = (argv: string[], env: Record<string, string> = {}) =>
  startCli(argv, { env, inheritEnv: false });

export const runCli = (argv: string[], env: Record<string, string> = {}) => startCliClean(argv, env).done;

/** A config file for CLI commands run against a test server (its database, data dir and keyring). */
export const writeServerConfig = (
  server: TestServer,
  extra: Record<string, string> = {},
  name = 'voicechat.env',
): string =>
  writeConfig(
    server.database.dir,
    {
      VOICECHAT_DATA_DIR: server.database.dir,
      VOICECHAT_DATABASE_URL: server.database.databaseUrl,
      VOICECHAT_KEYRING: server.config.keyringFile,
      ...extra,
    },
    name,
  );
