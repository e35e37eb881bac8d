/**
 * Guild fixtures written straight to the database, for gateway tests that must not depend on the
 * guild REST routes: a guild with its @everyone role, a public and a hidden text channel, members,
 * roles and overrides.
 */

import { EVERYONE_DEFAULT, P } from '../../src/access/permissions.js';
import type { Db } from '../../src/db/knex.js';
import { newId, nowMs } from '../../src/ids.js';

export interface GuildFixture {
  guildId: string;
  everyoneRoleId: string;
  generalId: string;
  /** A channel @everyone may not VIEW (override deny VIEW_CHANNEL). */
  hiddenId: string;
}

export async function createGuildFixture(db: Db, ownerId: string, memberIds: string[] = []): Promise<GuildFixture> {
  const now = nowMs();
  const guildId = newId();
  const everyoneRoleId = newId();
  const generalId = newId();
  const hiddenId = newId();
  await db('guilds').insert({ id: guildId, name: 'Test guild', owner_id: ownerId, created_at: now, updated_at: now });
  await db('roles').insert({
    id: everyoneRoleId,
    guild_id: guildId,
    name: '@everyone',
    permissions: EVERYONE_DEFAULT.toString(),
    position: 0,
    is_everyone: true,
    created_at: now,
  });
  await db('channels').insert([
    { id: generalId, guild_id: guildId, type: 'text', name: 'general', position: 0, created_at: now, updated_at: now },
    { id: hiddenId, guild_id: guildId, type: 'text', name: 'staff', position: 1, created_at: now, updated_at: now },
  ]);
  await db('channel_overrides').insert({
    channel_id: hiddenId,
    role_id: everyoneRoleId,
    allow: '0',
    deny: P.VIEW_CHANNEL.toString(),
  });
  for (const userId of [ownerId, ...memberIds]) await addMember(db, guildId, userId);
  return { guildId, everyoneRoleId, generalId, hiddenId };
}

export async function addMember(db: Db, guildId: string, userId: string): Promise<void> {
  await db('guild_members').insert({ guild_id: guildId, user_id: userId, joined_at: nowMs() });
}

export async function removeMember(db: Db, guildId: string, userId: string): Promise<void> {
  await db('member_roles').where({ guild_id: guildId, user_id: userId }).delete();
  await db('guild_members').where({ guild_id: guildId, user_id: userId }).delete();
}

export async function createRole(db: Db, guildId: string, permissions: bigint, position = 1): Promise<string> {
  const id = newId();
  await db('roles').insert({
    id,
    guild_id: guildId,
    name: `role-${position}`,
    permissions: permissions.toString(),
    position,
    is_everyone: false,
    created_at: nowMs(),
  });
  return id;
}

export async function assignRole(db: Db, guildId: string, userId: string, roleId: string): Promise<void> {
  await db('member_roles').insert({ guild_id: guildId, user_id: userId, role_id: roleId });
}

export async function createTextChannel(db: Db, guildId: string, name: string): Promise<string> {
  const id = newId();
  const now = nowMs();
  await db('channels').insert({
    id,
    guild_id: guildId,
    type: 'text',
    name,
    position: 2,
    created_at: now,
    updated_at: now,
  });
  return id;
}
