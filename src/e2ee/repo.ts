/**
 * Storage of DM channels, devices, one-time keys, queued to-device messages and Megolm sessions: the
 * only knex user of the E2EE feature. The claim is one `DELETE … WHERE id = (SELECT … LIMIT 1)
 * RETURNING` on both dialects; Postgres adds `FOR UPDATE SKIP LOCKED` (concurrent claimers take
 * distinct keys without waiting), SQLite has a single writer (IMMEDIATE transactions).
 */
import type { ChannelRow } from '../access/repo.js';
import type { Queryable as Q } from '../db/knex.js';

export interface DeviceRow {
  id: string;
  user_id: string;
  device_id: string;
  curve25519: string;
  ed25519: string;
  signature: string | null;
  fallback_key_id: string | null;
  fallback_key: string | null;
  created_at: number;
  last_seen_at: number | null;
}

export interface ToDeviceRow {
  id: string;
  recipient_user_id: string;
  recipient_device_id: string;
  sender_user_id: string;
  sender_device_id: string | null;
  type: string;
  ciphertext: string;
  created_at: number;
  expires_at: number;
}

export interface MegolmSessionRow {
  id: string;
  channel_id: string;
  session_id: string;
  sender_user_id: string;
  sender_key: string;
  session_data: string;
  created_at: number;
  expired_at: number | null;
}

export interface DmChannelRow extends ChannelRow {
  dm_key?: string | null;
  owner_id?: string | null;
}

const isPg = (q: Q) => q.client.config.client === 'pg';

// ---------------------------------------------------------------- users and DM channels

export const dmRepo = {
  users: (q: Q, ids: string[]): Promise<{ id: string; is_admin: boolean | number; disabled_at: number | null }[]> =>
    ids.length === 0 ? Promise.resolve([]) : q('users').whereIn('id', ids).select('id', 'is_admin', 'disabled_at'),
  /** Serialises opening one pair's DM on Postgres (SQLite has one writer). */
  lockPair: async (q: Q, dmKey: string) => {
    if (isPg(q)) await q.raw('SELECT pg_advisory_xact_lock(hashtextextended(?, 0))', [`dm:${dmKey}`]);
  },
  byKey: (q: Q, dmKey: string): Promise<DmChannelRow | undefined> => q('channels').where({ dm_key: dmKey }).first(),
  insertChannel: (q: Q, row: DmChannelRow) => q('channels').insert(row),
  participants: (q: Q, channelIds: string[]): Promise<{ channel_id: string; user_id: string }[]> =>
    channelIds.length === 0
      ? Promise.resolve([])
      : q('dm_participants').whereIn('channel_id', channelIds).whereNull('left_at').select('channel_id', 'user_id'),
  /** Adds participants, or brings back ones who left. */
  join: async (q: Q, channelId: string, userIds: string[], now: number) => {
    if (userIds.length === 0) return;
    await q('dm_participants')
      .insert(userIds.map((user_id) => ({ channel_id: channelId, user_id, joined_at: now, left_at: null })))
      .onConflict(['channel_id', 'user_id'])
      .merge({ left_at: null });
  },
  leave: (q: Q, channelId: string, userId: string, now: number): Promise<number> =>
    q('dm_participants')
      .where({ channel_id: channelId, user_id: userId })
      .whereNull('left_at')
      .update({ left_at: now }),
  channelsOf: (q: Q, userId: string): Promise<DmChannelRow[]> =>
    q('channels')
      .join('dm_participants', 'dm_participants.channel_id', 'channels.id')
      .where('dm_participants.user_id', userId)
      .whereNull('dm_participants.left_at')
      .whereIn('channels.type', ['dm', 'group_dm'])
      .orderBy('channels.id', 'desc')
      .select('channels.*'),
};

// ---------------------------------------------------------------- devices and one-time keys

export const deviceRepo = {
  find: (q: Q, userId: string, deviceId: string): Promise<DeviceRow | undefined> =>
    q('devices').where({ user_id: userId, device_id: deviceId }).first(),
  listOf: (q: Q, userId: string): Promise<DeviceRow[]> =>
    q('devices').where({ user_id: userId }).orderBy('created_at', 'asc').orderBy('id', 'asc'),
  /** Device ids of these users, for checking to-device recipients. */
  idsOf: (q: Q, userIds: string[]): Promise<{ user_id: string; device_id: string }[]> =>
    userIds.length === 0
      ? Promise.resolve([])
      : q('devices').whereIn('user_id', userIds).select('user_id', 'device_id'),
  count: async (q: Q, userId: string): Promise<number> =>
    Number((await q('devices').where({ user_id: userId }).count({ n: '*' }).first())?.n ?? 0),
  /** Serialises device creation per user on Postgres (the 10-device cap); SQLite has one writer. */
  lockUser: async (q: Q, userId: string) => {
    if (isPg(q)) await q('users').where({ id: userId }).forUpdate().first('id');
  },
  insert: (q: Q, row: DeviceRow) => q('devices').insert(row),
  update: (q: Q, id: string, patch: Partial<DeviceRow>) => q('devices').where({ id }).update(patch),
  delete: (q: Q, id: string) => q('devices').where({ id }).delete(),
};

export const oneTimeKeyRepo = {
  existing: (q: Q, deviceRowId: string, keyIds: string[]): Promise<{ key_id: string; key: string }[]> =>
    keyIds.length === 0
      ? Promise.resolve([])
      : q('one_time_keys').where({ device_id: deviceRowId }).whereIn('key_id', keyIds).select('key_id', 'key'),
  insert: async (q: Q, rows: { id: string; device_id: string; key_id: string; key: string; created_at: number }[]) => {
    for (let i = 0; i < rows.length; i += 200) await q('one_time_keys').insert(rows.slice(i, i + 200));
  },
  count: async (q: Q, deviceRowId: string): Promise<number> =>
    Number((await q('one_time_keys').where({ device_id: deviceRowId }).count({ n: '*' }).first())?.n ?? 0),
  /** Keeps the newest `keep` keys of the device; returns how many older ones went. */
  trim: (q: Q, deviceRowId: string, keep: number): Promise<number> =>
    keepNewest(q, 'one_time_keys', { device_id: deviceRowId }, keep),
  deleteOfDevice: (q: Q, deviceRowId: string) => q('one_time_keys').where({ device_id: deviceRowId }).delete(),
  /**
   * Takes (deletes and returns) the device's oldest one-time key, never the same key to two claimers.
   * Postgres: a claimer skips keys another claimer holds locked, so concurrent claims get distinct
   * keys without waiting; SQLite: the caller's transaction holds the single write lock.
   */
  take: async (q: Q, deviceRowId: string): Promise<{ key_id: string; key: string } | undefined> => {
    const lock = isPg(q) ? ' FOR UPDATE SKIP LOCKED' : '';
    const res = await q.raw(
      `DELETE FROM one_time_keys WHERE id = (
         SELECT id FROM one_time_keys WHERE device_id = ? ORDER BY created_at, id LIMIT 1${lock}
       ) RETURNING key_id, key`,
      [deviceRowId],
    );
    return isPg(q) ? res.rows[0] : res[0];
  },
};

/** Deletes all but the newest `keep` rows of `table` matching `where` (by created_at, then id); returns how many went. */
async function keepNewest(q: Q, table: string, where: Record<string, string>, keep: number): Promise<number> {
  const old: { id: string }[] = await q(table)
    .where(where)
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .offset(keep)
    .limit(100_000)
    .select('id');
  let removed = 0;
  for (let i = 0; i < old.length; i += 500)
    removed += await q(table)
      .whereIn(
        'id',
        old.slice(i, i + 500).map((r) => r.id),
      )
      .delete();
  return removed;
}

// ---------------------------------------------------------------- to-device queue

export const toDeviceRepo = {
  insert: async (q: Q, rows: ToDeviceRow[]) => {
    for (let i = 0; i < rows.length; i += 200) await q('to_device_messages').insert(rows.slice(i, i + 200));
  },
  count: async (q: Q, userId: string, deviceId: string): Promise<number> =>
    Number(
      (
        await q('to_device_messages')
          .where({ recipient_user_id: userId, recipient_device_id: deviceId })
          .count({ n: '*' })
          .first()
      )?.n ?? 0,
    ),
  /** Keeps the newest `keep` queued messages of a device; returns how many older ones were dropped. */
  trim: (q: Q, userId: string, deviceId: string, keep: number): Promise<number> =>
    keepNewest(q, 'to_device_messages', { recipient_user_id: userId, recipient_device_id: deviceId }, keep),
  pending: (q: Q, userId: string, deviceId: string, now: number, limit: number): Promise<ToDeviceRow[]> =>
    q('to_device_messages')
      .where({ recipient_user_id: userId, recipient_device_id: deviceId })
      .where('expires_at', '>', now)
      .orderBy('created_at', 'asc')
      .orderBy('id', 'asc')
      .limit(limit),
  ack: (q: Q, userId: string, ids: string[]): Promise<number> =>
    q('to_device_messages').where({ recipient_user_id: userId }).whereIn('id', ids).delete(),
  deleteOfDevice: (q: Q, userId: string, deviceId: string) =>
    q('to_device_messages').where({ recipient_user_id: userId, recipient_device_id: deviceId }).delete(),
};

// ---------------------------------------------------------------- Megolm sessions

export const megolmRepo = {
  insert: (q: Q, row: MegolmSessionRow) => q('megolm_sessions').insert(row),
  list: (q: Q, channelId: string): Promise<MegolmSessionRow[]> =>
    q('megolm_sessions').where({ channel_id: channelId }).orderBy('created_at', 'asc').orderBy('id', 'asc'),
  /** Marks the live sessions of these channels expired; returns the channels that had any. */
  expire: async (q: Q, channelIds: string[], now: number): Promise<string[]> => {
    if (channelIds.length === 0) return [];
    const live: { channel_id: string }[] = await q('megolm_sessions')
      .whereIn('channel_id', channelIds)
      .whereNull('expired_at')
      .distinct('channel_id');
    const ids = live.map((r) => r.channel_id);
    if (ids.length > 0)
      await q('megolm_sessions').whereIn('channel_id', ids).whereNull('expired_at').update({ expired_at: now });
    return ids;
  },
  guildChannelIds: async (q: Q, guildId: string): Promise<string[]> =>
    (await q('channels').where({ guild_id: guildId }).select('id')).map((r: { id: string }) => r.id),
};
