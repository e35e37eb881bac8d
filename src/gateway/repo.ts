/**
 * The gateway's reads: a user's whole view (the `ready` snapshot and their subscriptions) and, for an
 * `access_changed` covering a whole guild, every member's visible channels in one pass. Both run a
 * fixed number of queries whatever the number of guilds or members, and decide visibility with the
 * one permission function (`channelPermissions` in src/access/permissions.ts), exactly like
 * `visibleTo` in src/access/loaders.ts (a test checks they agree).
 */

import { channelPermissions, has, type OverrideLike, P } from '../access/permissions.js';
import type { ChannelRow, RoleRow } from '../access/repo.js';
import type { Db } from '../db/knex.js';
import type { UserRow } from '../users/presenter.js';

export interface GuildRow {
  id: string;
  name: string;
  owner_id: string;
  created_at: number;
}
export interface GuildView {
  guild: GuildRow;
  roles: RoleRow[];
  channels: ChannelRow[];
  membersCount: number;
}
export interface UserView {
  user: UserRow | undefined;
  guilds: GuildView[];
  dms: { channel: ChannelRow; recipientIds: string[] }[];
}

const CHANNEL_COLUMNS = [
  'id',
  'guild_id',
  'type',
  'name',
  'topic',
  'position',
  'user_limit',
  'e2ee_voice',
  'created_at',
];

function groupBy<T, K>(rows: T[], key: (r: T) => K): Map<K, T[]> {
  const m = new Map<K, T[]>();
  for (const r of rows) {
    const k = key(r);
    const list = m.get(k);
    if (list) list.push(r);
    else m.set(k, [r]);
  }
  return m;
}

/** The channels of one guild a member holding `memberRoleIds` may VIEW. */
function visibleChannels(
  guild: { owner_id: string },
  userId: string,
  allRoles: RoleRow[],
  memberRoleIds: Set<string>,
  channels: ChannelRow[],
  overridesByChannel: Map<string, (OverrideLike & { channel_id: string })[]>,
): ChannelRow[] {
  const everyone = allRoles.find((r) => Boolean(r.is_everyone));
  const roles = allRoles.filter((r) => Boolean(r.is_everyone) || memberRoleIds.has(r.id));
  const isOwner = guild.owner_id === userId;
  return channels.filter((c) =>
    has(channelPermissions(isOwner, roles, overridesByChannel.get(c.id) ?? [], everyone?.id ?? ''), P.VIEW_CHANNEL),
  );
}

/** Everything the `ready` frame shows a user, limited to what they may VIEW. */
export async function loadUserView(db: Db, userId: string): Promise<UserView> {
  const [user, guilds, memberRoles, dmRows] = await Promise.all([
    db('users').where({ id: userId }).first() as Promise<UserRow | undefined>,
    db('guilds')
      .join('guild_members', 'guild_members.guild_id', 'guilds.id')
      .where('guild_members.user_id', userId)
      .select('guilds.id', 'guilds.name', 'guilds.owner_id', 'guilds.created_at') as Promise<GuildRow[]>,
    db('member_roles').where({ user_id: userId }).select('guild_id', 'role_id') as Promise<
      { guild_id: string; role_id: string }[]
    >,
    db('channels')
      .join('dm_participants', 'dm_participants.channel_id', 'channels.id')
      .where('dm_participants.user_id', userId)
      .whereNull('dm_participants.left_at')
      .select(CHANNEL_COLUMNS.map((c) => `channels.${c}`)) as Promise<ChannelRow[]>,
  ]);
  const guildIds = guilds.map((g) => g.id);
  const dmIds = dmRows.map((c) => c.id);
  const [roles, channels, overrides, counts, recipients] = await Promise.all([
    guildIds.length ? (db('roles').whereIn('guild_id', guildIds).select() as Promise<RoleRow[]>) : [],
    guildIds.length
      ? (db('channels').whereIn('guild_id', guildIds).select(CHANNEL_COLUMNS) as Promise<ChannelRow[]>)
      : [],
    guildIds.length
      ? (db('channel_overrides')
          .join('channels', 'channels.id', 'channel_overrides.channel_id')
          .whereIn('channels.guild_id', guildIds)
          .select(
            'channel_overrides.channel_id',
            'channel_overrides.role_id',
            'channel_overrides.allow',
            'channel_overrides.deny',
          ) as Promise<(OverrideLike & { channel_id: string })[]>)
      : [],
    guildIds.length
      ? (db('guild_members')
          .whereIn('guild_id', guildIds)
          .groupBy('guild_id')
          .select('guild_id')
          .count({ n: '*' }) as Promise<{ guild_id: string; n: number | string }[]>)
      : [],
    dmIds.length
      ? (db('dm_participants')
          .whereIn('channel_id', dmIds)
          .whereNull('left_at')
          .select('channel_id', 'user_id') as Promise<{ channel_id: string; user_id: string }[]>)
      : [],
  ]);
  const rolesByGuild = groupBy(roles, (r) => r.guild_id);
  const channelsByGuild = groupBy(channels, (c) => c.guild_id);
  const overridesByChannel = groupBy(overrides, (o) => o.channel_id);
  const memberRolesByGuild = groupBy(memberRoles, (r) => r.guild_id);
  const countByGuild = new Map(counts.map((c) => [c.guild_id, Number(c.n)]));
  const recipientsByChannel = groupBy(recipients, (r) => r.channel_id);
  return {
    user,
    guilds: guilds.map((guild) => {
      const guildRoles = rolesByGuild.get(guild.id) ?? [];
      const mine = new Set((memberRolesByGuild.get(guild.id) ?? []).map((r) => r.role_id));
      return {
        guild,
        roles: guildRoles,
        channels: visibleChannels(
          guild,
          userId,
          guildRoles,
          mine,
          channelsByGuild.get(guild.id) ?? [],
          overridesByChannel,
        ),
        membersCount: countByGuild.get(guild.id) ?? 0,
      };
    }),
    dms: dmRows.map((channel) => ({
      channel,
      // The other participants (as POST/GET /api/dm present them).
      recipientIds: (recipientsByChannel.get(channel.id) ?? [])
        .map((r) => r.user_id)
        .filter((id) => id !== userId)
        .sort(),
    })),
  };
}

/**
 * For a guild-wide access change: which channels each member of `guildId` may VIEW now. Users absent
 * from the map are not members (any more). `undefined` when the guild no longer exists.
 */
export async function loadGuildVisibility(
  db: Db,
  guildId: string,
  userIds: string[],
): Promise<{ visible: Map<string, Set<string>>; channelIds: Set<string> } | undefined> {
  const guild = (await db('guilds').where({ id: guildId }).first('id', 'owner_id')) as GuildRow | undefined;
  if (!guild) return undefined;
  // Past a few hundred users, reading the whole guild is cheaper than a huge IN list.
  const only = <Q extends { whereIn: (c: string, v: string[]) => Q }>(q: Q): Q =>
    userIds.length <= 500 ? q.whereIn('user_id', userIds) : q;
  const wanted = new Set(userIds);
  const [members, roles, memberRoles, channels, overrides] = await Promise.all([
    only(db('guild_members').where({ guild_id: guildId })).select('user_id') as Promise<{ user_id: string }[]>,
    db('roles').where({ guild_id: guildId }).select() as Promise<RoleRow[]>,
    only(db('member_roles').where({ guild_id: guildId })).select('user_id', 'role_id') as Promise<
      { user_id: string; role_id: string }[]
    >,
    db('channels').where({ guild_id: guildId }).select(CHANNEL_COLUMNS) as Promise<ChannelRow[]>,
    db('channel_overrides')
      .join('channels', 'channels.id', 'channel_overrides.channel_id')
      .where('channels.guild_id', guildId)
      .select(
        'channel_overrides.channel_id',
        'channel_overrides.role_id',
        'channel_overrides.allow',
        'channel_overrides.deny',
      ) as Promise<(OverrideLike & { channel_id: string })[]>,
  ]);
  const overridesByChannel = groupBy(overrides, (o) => o.channel_id);
  const rolesByUser = groupBy(memberRoles, (r) => r.user_id);
  const visible = new Map<string, Set<string>>();
  for (const { user_id } of members) {
    if (!wanted.has(user_id)) continue;
    const mine = new Set((rolesByUser.get(user_id) ?? []).map((r) => r.role_id));
    visible.set(
      user_id,
      new Set(visibleChannels(guild, user_id, roles, mine, channels, overridesByChannel).map((c) => c.id)),
    );
  }
  return { visible, channelIds: new Set(channels.map((c) => c.id)) };
}

/** Which of these channels still exist (a vanished channel already had its real `channel_delete`). */
export async function existingChannelIds(db: Db, channelIds: string[]): Promise<Set<string>> {
  if (channelIds.length === 0) return new Set();
  const rows = (await db('channels').whereIn('id', channelIds).select('id')) as { id: string }[];
  return new Set(rows.map((r) => r.id));
}

/** Which of these guilds still exist (a member of a deleted guild already had `guild_delete`). */
export async function existingGuildIds(db: Db, guildIds: string[]): Promise<Set<string>> {
  if (guildIds.length === 0) return new Set();
  const rows = (await db('guilds').whereIn('id', guildIds).select('id')) as { id: string }[];
  return new Set(rows.map((r) => r.id));
}
