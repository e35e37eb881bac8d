/**
 * The one guild fixture, written straight to the database (so a suite does not depend on the guild
 * REST routes it may be testing): an owner, an admin (ADMINISTRATOR role), a moderator, a plain
 * member, an outsider and a banned user; roles admin > moderator > low > @everyone (the default
 * bits); #general (text), General (voice) and #staff (text, @everyone denied VIEW_CHANNEL). Plus small
 * database helpers for changing membership and roles under a test, and `ok` for HTTP assertions.
 */
import { expect } from 'vitest';
import { EVERYONE_DEFAULT, P, toWire } from '../../src/access/permissions.js';
import type { Db } from '../../src/db/knex.js';
import { newId, nowMs } from '../../src/ids.js';
import { api, createUser, type TestUser } from './factories.js';
import type { TestServer } from './server.js';

export const MODERATOR_BITS =
  P.KICK_MEMBERS | P.BAN_MEMBERS | P.MANAGE_MESSAGES | P.MANAGE_ROLES | P.MANAGE_CHANNELS | P.VIEW_AUDIT_LOG;

export interface GuildFixture {
  guildId: string;
  name: string;
  everyoneRoleId: string;
  adminRoleId: string;
  modRoleId: string;
  lowRoleId: string;
  textChannelId: string;
  voiceChannelId: string;
  /** A text channel @everyone may not VIEW (owner and admin still can). */
  hiddenChannelId: string;
  owner: TestUser;
  admin: TestUser;
  moderator: TestUser;
  member: TestUser;
  outsider: TestUser;
  banned: TestUser;
  /** Members (owner, admin, moderator, member). */
  memberCount: number;
}

export async function ok(res: Promise<{ status: number; body: any }>, status = 200): Promise<any> {
  const r = await res;
  expect(r.status, JSON.stringify(r.body)).toBe(status);
  return r.body;
}

/** The rows every guild fixture has, for given users: what seedGuild builds on (and suites without a server use). */
export type GuildRows = Pick<
  GuildFixture,
  'guildId' | 'name' | 'everyoneRoleId' | 'textChannelId' | 'voiceChannelId' | 'hiddenChannelId'
>;

/** The guild, @everyone, #general, General (voice), #staff (hidden from @everyone), and memberships. */
export async function seedGuildRows(db: Db, ownerId: string, memberIds: string[] = [], name = 'Test guild') {
  const now = nowMs();
  const guildId = newId();
  await db('guilds').insert({ id: guildId, name, owner_id: ownerId, created_at: now, updated_at: now });
  const everyoneRoleId = await createRole(db, guildId, EVERYONE_DEFAULT, 0, '@everyone');
  const channel = (channelName: string, type: 'text' | 'voice', position: number) => ({
    id: newId(),
    guild_id: guildId,
    type,
    name: channelName,
    position,
    created_at: now,
    updated_at: now,
  });
  const text = channel('general', 'text', 0);
  const voice = channel('General', 'voice', 1);
  const hidden = channel('staff', 'text', 2);
  await db('channels').insert([text, voice, hidden]);
  await db('channel_overrides').insert({
    channel_id: hidden.id,
    role_id: everyoneRoleId,
    allow: '0',
    deny: toWire(P.VIEW_CHANNEL),
  });
  for (const userId of [ownerId, ...memberIds]) await addMember(db, guildId, userId);
  const rows: GuildRows = {
    guildId,
    name,
    everyoneRoleId,
    textChannelId: text.id,
    voiceChannelId: voice.id,
    hiddenChannelId: hidden.id,
  };
  return rows;
}

/** The standard guild with its six users, roles and a ban (see the header). */
export async function seedGuild(server: TestServer, name = 'Test guild'): Promise<GuildFixture> {
  const db = server.db;
  const [owner, admin, moderator, member, outsider, banned] = (await Promise.all(
    Array.from({ length: 6 }, () => createUser(server)),
  )) as [TestUser, TestUser, TestUser, TestUser, TestUser, TestUser];
  const rows = await seedGuildRows(db, owner.id, [admin.id, moderator.id, member.id], name);
  const adminRoleId = await createRole(db, rows.guildId, P.ADMINISTRATOR, 3, 'admin');
  const modRoleId = await createRole(db, rows.guildId, MODERATOR_BITS, 2, 'moderator');
  const lowRoleId = await createRole(db, rows.guildId, 0n, 1, 'low');
  await assignRole(db, rows.guildId, admin.id, adminRoleId);
  await assignRole(db, rows.guildId, moderator.id, modRoleId);
  await db('bans').insert({ guild_id: rows.guildId, user_id: banned.id, moderator_id: owner.id, created_at: nowMs() });
  return {
    ...rows,
    adminRoleId,
    modRoleId,
    lowRoleId,
    owner,
    admin,
    moderator,
    member,
    outsider,
    banned,
    memberCount: 4,
  };
}

/** Joins a user to a guild through the real invite flow (owner creates the invite). */
export async function joinGuild(
  server: TestServer,
  owner: Pick<TestUser, 'headers'>,
  guildId: string,
  user: Pick<TestUser, 'headers'>,
) {
  const invite = await ok(api(server, 'POST', `/api/guilds/${guildId}/invites`, { user: owner, body: {} }), 201);
  await ok(api(server, 'POST', `/api/invites/${invite.code}/join`, { user }));
}

export async function addMember(db: Db, guildId: string, userId: string): Promise<void> {
  await db('guild_members').insert({ guild_id: guildId, user_id: userId, joined_at: nowMs() });
}

export async function removeMember(db: Db, guildId: string, userId: string): Promise<void> {
  await db('member_roles').where({ guild_id: guildId, user_id: userId }).delete();
  await db('guild_members').where({ guild_id: guildId, user_id: userId }).delete();
}

export async function createRole(
  db: Db,
  guildId: string,
  permissions: bigint,
  position = 1,
  name = `role-${position}`,
): Promise<string> {
  const id = newId();
  await db('roles').insert({
    id,
    guild_id: guildId,
    name,
    permissions: toWire(permissions),
    position,
    is_everyone: name === '@everyone',
    created_at: nowMs(),
  });
  return id;
}

export async function assignRole(db: Db, guildId: string, userId: string, roleId: string): Promise<void> {
  await db('member_roles').insert({ guild_id: guildId, user_id: userId, role_id: roleId });
}

export async function createTextChannel(db: Db, guildId: string, name: string, position = 3): Promise<string> {
  const id = newId();
  const now = nowMs();
  await db('channels').insert({
    id,
    guild_id: guildId,
    type: 'text',
    name,
    position,
    created_at: now,
    updated_at: now,
  });
  return id;
}

/** A guild owned by `owner` with `members` joined by invite, and its `general` text channel. */
export async function guildWith(server: TestServer, owner: TestUser, name: string, members: TestUser[] = []) {
  const guild = await ok(api(server, 'POST', '/api/guilds', { user: owner, body: { name } }), 201);
  for (const m of members) await joinGuild(server, owner, guild.id, m);
  const channelId: string = guild.channels.find((c: { type: string }) => c.type === 'text').id;
  return { guild, guildId: guild.id as string, channelId };
}

/**
 * `count` fresh users (no password anyone knows) straight into the database in batches, as members
 * of `guildId` (or, with `as: 'bans'`, banned from it): for tests of large guilds, seconds not minutes.
 */
export async function seedUsers(
  db: Db,
  guildId: string,
  count: number,
  opts: { as?: 'members' | 'bans'; moderatorId?: string } = {},
): Promise<string[]> {
  const now = nowMs();
  const tag = Math.random().toString(36).slice(2, 8);
  const users = Array.from({ length: count }, (_, i) => ({
    id: newId(),
    username: `bulk_${tag}_${i}`,
    password_hash: '$argon2id$v=19$m=19456,t=2,p=1$bm90LWEtcmVhbC1zYWx0$bm90LWEtcmVhbC1oYXNoLW5vdC1hLXJlYWwtaGFzaA',
    created_at: now,
    updated_at: now,
  }));
  await db.batchInsert('users', users, 250);
  const ids = users.map((u) => u.id);
  if (opts.as === 'bans') {
    const rows = ids.map((user_id) => ({
      guild_id: guildId,
      user_id,
      moderator_id: opts.moderatorId,
      created_at: now,
    }));
    await db.batchInsert('bans', rows, 250);
  } else {
    await db.batchInsert(
      'guild_members',
      ids.map((user_id, i) => ({ guild_id: guildId, user_id, joined_at: now + i })),
      250,
    );
  }
  return ids;
}
