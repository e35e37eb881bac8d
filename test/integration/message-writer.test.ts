/**
 * Group commit of message inserts (SQLite writer thread / Postgres multi-row INSERT): concurrent
 * inserts all land, and one bad row in a batch fails alone while its neighbours commit.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { translateDbError } from '../../src/db/errors.js';
import { newId, nowMs } from '../../src/ids.js';
import type { MessageRow } from '../../src/messages/presenter.js';
import { createMessageWriter, type MessageInserter } from '../../src/messages/repo.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

describe('message writer', () => {
  let database: TestDatabase;
  let writer: MessageInserter;
  const ids = { user: newId(), guild: newId(), channel: newId() };
  beforeAll(async () => {
    database = await createTestDatabase();
    writer = createMessageWriter(database.db, { dialect: database.dialect, sqliteFile: database.sqliteFile });
    const db = database.db;
    const now = nowMs();
    await db('users').insert({
      id: ids.user,
      username: 'writer',
      password_hash: 'x',
      created_at: now,
      updated_at: now,
    });
    await db('guilds').insert({ id: ids.guild, name: 'g', owner_id: ids.user, created_at: now, updated_at: now });
    await db('channels').insert({
      id: ids.channel,
      guild_id: ids.guild,
      type: 'text',
      name: 'c',
      position: 0,
      created_at: now,
      updated_at: now,
    });
  });
  afterAll(async () => {
    await writer?.close();
    await database?.drop();
  });

  const row = (channel = ids.channel, content = 'hello'): MessageRow => ({
    id: newId(),
    channel_id: channel,
    author_id: ids.user,
    content,
    encrypted: false,
    nonce: null,
    reply_to: null,
    created_at: nowMs(),
    edited_at: null,
    deleted_at: null,
  });

  it('commits many concurrent inserts', async () => {
    const rows = Array.from({ length: 300 }, (_, i) => row(ids.channel, `m${i}`));
    await Promise.all(rows.map((r) => writer.insert(r)));
    const n = await database
      .db('messages')
      .whereIn(
        'id',
        rows.map((r) => r.id),
      )
      .count({ n: '*' });
    expect(Number(n[0]!.n)).toBe(300);
  });

  it('fails only the bad row of a batch', async () => {
    const good = [row(), row(), row()];
    const bad = row(newId()); // unknown channel: foreign key violation
    const tooLong = row(ids.channel, 'x'.repeat(4001)); // message_length constraint
    const results = await Promise.allSettled([good[0]!, bad, good[1]!, tooLong, good[2]!].map((r) => writer.insert(r)));
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'rejected', 'fulfilled']);
    const reasons = results
      .filter((r) => r.status === 'rejected')
      .map((r) => translateDbError((r as PromiseRejectedResult).reason));
    expect(reasons.map((e) => e?.code)).toEqual(['VALIDATION_FAILED', 'VALIDATION_FAILED']);
    const stored = await database
      .db('messages')
      .whereIn(
        'id',
        [...good, bad, tooLong].map((r) => r.id),
      )
      .select('id');
    expect(stored.map((r: { id: string }) => r.id).sort()).toEqual(good.map((r) => r.id).sort());
  });
});
