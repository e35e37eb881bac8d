/**
 * Every database constraint of DESIGN.md §5 against the real database, with the shared vectors in
 * /work/shared/vectors/constraints.json (copied into test/fixtures) plus our own. One suite; it runs on
 * the dialect VOICECHAT_TEST_DB selects, so CI runs it once on SQLite and once on Postgres.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { translateDbError } from '../../src/db/errors.js';
import type { Db } from '../../src/db/knex.js';
import { newId, nowMs } from '../../src/ids.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

const vectors = JSON.parse(readFileSync(new URL('../fixtures/constraints.json', import.meta.url), 'utf8'));

let database: TestDatabase;
let db: Db;
let userId: string;
let guildId: string;
let channelId: string;
let deviceId: string;

beforeAll(async () => {
  database = await createTestDatabase();
  db = database.db;
  const now = nowMs();
  userId = newId();
  await db('users').insert({
    id: userId,
    username: 'fixture_owner',
    password_hash: 'x',
    created_at: now,
    updated_at: now,
  });
  guildId = newId();
  await db('guilds').insert({ id: guildId, name: 'g', owner_id: userId, created_at: now, updated_at: now });
  channelId = newId();
  await db('channels').insert({
    id: channelId,
    guild_id: guildId,
    type: 'text',
    name: 'c',
    created_at: now,
    updated_at: now,
  });
  deviceId = newId();
  await db('devices').insert({
    id: deviceId,
    user_id: userId,
    device_id: 'DEV1',
    curve25519: 'c'.repeat(43),
    ed25519: 'e'.repeat(43),
    created_at: now,
  });
});

afterAll(async () => {
  await database?.drop();
});

/** Column widths that Postgres enforces (varchar(n)) before any CHECK runs; SQLite ignores them. */
const WIDTH: Record<string, number> = { username: 32, email: 254, color: 7 };

async function count(table: string, where: Record<string, unknown>): Promise<number> {
  const row = await db(table).where(where).count<{ n: number | string }[]>({ n: '*' }).first();
  return Number(row?.n ?? 0);
}

/** Inserts `row`, expects the database to refuse it, no row to remain, and the error to name `constraint`. */
async function expectRejected(table: string, row: Record<string, unknown>, constraint: string, column?: string) {
  let caught: unknown;
  try {
    await db(table).insert(row);
  } catch (e) {
    caught = e;
  }
  expect(caught, `${table} ${JSON.stringify(row).slice(0, 120)} should be rejected`).toBeDefined();
  expect(await count(table, { id: row.id })).toBe(0);
  const mapped = translateDbError(caught);
  expect(mapped?.code).toBe('VALIDATION_FAILED');
  expect(mapped?.status).toBe(400);
  const value = column ? row[column] : undefined;
  const tooWide =
    database.dialect === 'pg' && typeof value === 'string' && column && value.length > (WIDTH[column] ?? 1e9);
  const hasNul = database.dialect === 'pg' && typeof value === 'string' && value.includes('\u0000');
  if (hasNul) {
    // Postgres refuses a NUL byte in text before any CHECK runs.
    expect(mapped?.message).toBe('A value contains characters that cannot be stored.');
  } else if (tooWide) {
    // Postgres checks varchar(n) first: still rejected, reported as too long.
    expect(mapped?.message).toBe('A value is too long.');
  } else {
    expect(mapped?.details).toEqual([{ path: constraint, message: 'constraint violated' }]);
    expect(mapped?.message).toContain(constraint);
  }
  // The mapped error never carries the offending value.
  if (typeof value === 'string' && value.length > 3) expect(JSON.stringify(mapped?.toJSON())).not.toContain(value);
}

async function expectAccepted(table: string, row: Record<string, unknown>) {
  await db(table).insert(row);
  expect(await count(table, { id: row.id })).toBe(1);
}

const user = (over: Record<string, unknown>) => {
  const now = nowMs();
  return {
    id: newId(),
    username: `u${Math.random().toString(36).slice(2, 10)}`,
    password_hash: 'x',
    created_at: now,
    updated_at: now,
    ...over,
  };
};
const role = (over: Record<string, unknown>) => ({
  id: newId(),
  guild_id: guildId,
  name: 'r',
  created_at: nowMs(),
  ...over,
});
const channel = (over: Record<string, unknown>) => {
  const now = nowMs();
  return { id: newId(), guild_id: guildId, type: 'text', name: 'c', created_at: now, updated_at: now, ...over };
};
const message = (over: Record<string, unknown>) => ({
  id: newId(),
  channel_id: channelId,
  author_id: userId,
  content: 'hello',
  created_at: nowMs(),
  ...over,
});
const attachment = (over: Record<string, unknown>) => ({
  id: newId(),
  channel_id: channelId,
  uploader_id: userId,
  filename: 'f.png',
  storage_name: newId().replace(/-/g, ''),
  mime_type: 'image/png',
  size_bytes: 1,
  created_at: nowMs(),
  ...over,
});
const session = (over: Record<string, unknown>) => {
  const now = nowMs();
  const id = newId();
  return {
    id,
    family_id: id,
    user_id: userId,
    token_hash: newId().replace(/-/g, '').padEnd(64, '0'),
    created_at: now,
    expires_at: now + 1000,
    ...over,
  };
};

describe(`database constraints (${process.env.VOICECHAT_TEST_DB || 'sqlite'})`, () => {
  it('email_format', async () => {
    for (const email of vectors.email_format.accept) await expectAccepted('users', user({ email }));
    for (const email of vectors.email_format.reject)
      await expectRejected('users', user({ email }), 'email_format', 'email');
    // Our own: no regex anchoring tricks, and nothing else hidden after a newline.
    for (const email of ['a@b.co\nx', 'a@b.co ', 'a@b.c_o']) {
      await expectRejected('users', user({ email }), 'email_format', 'email');
    }
  });

  it('username format and uniqueness', async () => {
    for (const username of vectors.username.accept) await expectAccepted('users', user({ username }));
    for (const username of vectors.username.reject) {
      await expectRejected('users', user({ username }), 'username_format', 'username');
    }
    for (const username of ['abc\n', 'ab\u0000c', 'ａｂｃ']) {
      await expectRejected('users', user({ username }), 'username_format', 'username');
    }
    let caught: unknown;
    const dup = user({ username: 'abc' });
    try {
      await db('users').insert(dup);
    } catch (e) {
      caught = e;
    }
    expect(translateDbError(caught)?.code).toBe('CONFLICT');
    expect(translateDbError(caught)?.status).toBe(409);
    expect(await count('users', { id: dup.id })).toBe(0);
  });

  it('valid_color on roles', async () => {
    for (const color of vectors.valid_color.accept) await expectAccepted('roles', role({ color }));
    for (const color of vectors.valid_color.reject)
      await expectRejected('roles', role({ color }), 'valid_color', 'color');
  });

  it('valid_position on roles and channels', async () => {
    for (const position of vectors.valid_position.accept) {
      await expectAccepted('roles', role({ position }));
      await expectAccepted('channels', channel({ position }));
    }
    for (const position of vectors.valid_position.reject) {
      await expectRejected('roles', role({ position }), 'valid_position');
      await expectRejected('channels', channel({ position }), 'valid_position');
    }
  });

  it('message_length counts characters, not bytes', async () => {
    for (const n of vectors.message_length.accept_lengths)
      await expectAccepted('messages', message({ content: 'a'.repeat(n) }));
    for (const n of vectors.message_length.reject_lengths) {
      await expectRejected('messages', message({ content: 'a'.repeat(n) }), 'message_length');
    }
    // Multi-byte characters: 4000 of them fit on both dialects, 4001 do not.
    await expectAccepted('messages', message({ content: 'é'.repeat(4000) }));
    await expectAccepted('messages', message({ content: '😀'.repeat(4000) }));
    await expectRejected('messages', message({ content: 'é'.repeat(4001) }), 'message_length');
  });

  it('encrypted_requires_nonce', async () => {
    for (const v of vectors.encrypted_requires_nonce.accept) await expectAccepted('messages', message(v));
    for (const v of vectors.encrypted_requires_nonce.reject) {
      await expectRejected('messages', message(v), 'encrypted_requires_nonce');
    }
  });

  it('valid_file_size on attachments', async () => {
    for (const size_bytes of vectors.valid_file_size.accept)
      await expectAccepted('attachments', attachment({ size_bytes }));
    for (const size_bytes of vectors.valid_file_size.reject) {
      await expectRejected('attachments', attachment({ size_bytes }), 'valid_file_size');
    }
  });

  it('valid_expiration on sessions and password reset tokens', async () => {
    const now = nowMs();
    for (const s of vectors.valid_expiration.accept_seconds_after_created) {
      await expectAccepted('sessions', session({ created_at: now, expires_at: now + s * 1000 }));
      const { family_id: _f, ...reset } = session({ created_at: now, expires_at: now + s * 1000 });
      await expectAccepted('password_reset_tokens', reset);
    }
    for (const s of vectors.valid_expiration.reject_seconds_after_created) {
      await expectRejected('sessions', session({ created_at: now, expires_at: now + s * 1000 }), 'valid_expiration');
      const { family_id: _f, ...reset } = session({ created_at: now, expires_at: now + s * 1000 });
      await expectRejected('password_reset_tokens', reset, 'reset_valid_expiration');
    }
  });

  it('our own checks: channel type, user limit, invite max uses', async () => {
    for (const type of ['text', 'voice', 'dm', 'group_dm']) await expectAccepted('channels', channel({ type }));
    for (const type of ['', 'TEXT', 'stage']) await expectRejected('channels', channel({ type }), 'channel_type');
    for (const user_limit of [null, 0, 99]) await expectAccepted('channels', channel({ type: 'voice', user_limit }));
    for (const user_limit of [-1, 100]) {
      await expectRejected('channels', channel({ type: 'voice', user_limit }), 'valid_user_limit');
    }
    const invite = (max_uses: number | null) => ({
      code: newId().slice(0, 8) + Math.random().toString(36).slice(2, 8),
      guild_id: guildId,
      max_uses,
      created_at: nowMs(),
    });
    await db('invites').insert(invite(null));
    await db('invites').insert(invite(1));
    let caught: unknown;
    const bad = invite(0);
    try {
      await db('invites').insert(bad);
    } catch (e) {
      caught = e;
    }
    expect(translateDbError(caught)?.details?.[0]?.path).toBe('valid_max_uses');
    expect(await count('invites', { code: bad.code })).toBe(0);
  });

  it('unique sessions.token_hash, one_time_keys (device_id, key_id), megolm_sessions (channel_id, session_id)', async () => {
    const first = session({});
    await db('sessions').insert(first);
    const dup = session({ token_hash: first.token_hash });
    await expectConflict('sessions', dup);

    const otk = (key_id: string, device = deviceId) => ({
      id: newId(),
      device_id: device,
      key_id,
      key: 'k'.repeat(43),
      created_at: nowMs(),
    });
    await db('one_time_keys').insert(otk('AAAAAQ'));
    await expectConflict('one_time_keys', otk('AAAAAQ'));
    await db('one_time_keys').insert(otk('AAAAAg')); // another key id on the same device is fine

    const mg = (session_id: string, channel = channelId) => ({
      id: newId(),
      channel_id: channel,
      session_id,
      sender_user_id: userId,
      sender_key: 's'.repeat(43),
      session_data: 'v1.k.x',
      created_at: nowMs(),
    });
    await db('megolm_sessions').insert(mg('S1'));
    await expectConflict('megolm_sessions', mg('S1'));
    const other = channel({});
    await db('channels').insert(other);
    await db('megolm_sessions').insert(mg('S1', other.id)); // same session id in another channel is fine
  });

  it('foreign keys are enforced', async () => {
    let caught: unknown;
    const orphan = message({ channel_id: newId() });
    try {
      await db('messages').insert(orphan);
    } catch (e) {
      caught = e;
    }
    expect(translateDbError(caught)?.code).toBe('VALIDATION_FAILED');
    expect(await count('messages', { id: orphan.id })).toBe(0);
  });
});

async function expectConflict(table: string, row: Record<string, unknown>) {
  let caught: unknown;
  try {
    await db(table).insert(row);
  } catch (e) {
    caught = e;
  }
  expect(caught, `${table} duplicate should be rejected`).toBeDefined();
  expect(translateDbError(caught)?.code).toBe('CONFLICT');
  expect(await count(table, { id: row.id })).toBe(0);
}
