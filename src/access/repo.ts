/**
 * The reads behind every permission decision: a guild's owner, a member's roles, a channel and its
 * overrides, DM participation, and what a user may see. The only knex user of the access kernel.
 */
import type { Queryable } from '../db/knex.js';
import type { OverrideLike, RoleLike } from './permissions.js';

export interface ChannelRow {
  id: string;
  guild_id: string | null;
  type: 'text' | 'voice' | 'dm' | 'group_dm';
  name: string | null;
  topic?: string | null;
  position: number;
  user_limit: number | null;
  /** SQLite returns 0/1. */
  e2ee_voice?: boolean | number | null;
  created_at: number;
  updated_at?: number;
}

export interface RoleRow extends RoleLike {
  guild_id: string;
  name: string;
  color: string | null;
  permissions: number | string;
  created_at: number;
}

export const accessRepo = {
  guildOwner: (q: Queryable, guildId: string): Promise<{ id: string; owner_id: string } | undefined> =>
    q('guilds').where({ id: guildId }).first('id', 'owner_id'),
  isMember: async (q: Queryable, guildId: string, userId: string): Promise<boolean> =>
    Boolean(await q('guild_members').where({ guild_id: guildId, user_id: userId }).first('user_id')),
  /** @everyone plus the roles the member holds. */
  memberRoles: (q: Queryable, guildId: string, userId: string): Promise<RoleLike[]> =>
    q('roles')
      .leftJoin('member_roles', function () {
        this.on('member_roles.role_id', '=', 'roles.id').andOn('member_roles.user_id', '=', q.raw('?', [userId]));
      })
      .where('roles.guild_id', guildId)
      .andWhere((w) => w.where('roles.is_everyone', true).orWhereNotNull('member_roles.role_id'))
      .select('roles.id', 'roles.permissions', 'roles.position', 'roles.is_everyone'),
  role: (q: Queryable, guildId: string, roleId: string): Promise<RoleRow | undefined> =>
    q('roles').where({ id: roleId, guild_id: guildId }).first(),
  channel: (q: Queryable, channelId: string): Promise<ChannelRow | undefined> =>
    q('channels').where({ id: channelId }).first(),
  isDmParticipant: async (q: Queryable, channelId: string, userId: string): Promise<boolean> =>
    Boolean(
      await q('dm_participants')
        .where({ channel_id: channelId, user_id: userId })
        .whereNull('left_at')
        .first('user_id'),
    ),
  channelOverrides: (q: Queryable, channelId: string): Promise<OverrideLike[]> =>
    q('channel_overrides').where({ channel_id: channelId }).select('role_id', 'allow', 'deny'),
  overridesOf: (q: Queryable, channelIds: string[]): Promise<(OverrideLike & { channel_id: string })[]> =>
    channelIds.length === 0
      ? Promise.resolve([])
      : q('channel_overrides').whereIn('channel_id', channelIds).select('channel_id', 'role_id', 'allow', 'deny'),
  memberGuildIds: async (q: Queryable, userId: string): Promise<string[]> =>
    (await q('guild_members').where({ user_id: userId }).select('guild_id')).map(
      (r: { guild_id: string }) => r.guild_id,
    ),
  guildChannels: (q: Queryable, guildId: string): Promise<ChannelRow[]> =>
    q('channels').where({ guild_id: guildId }).orderBy('position', 'asc').orderBy('id', 'asc'),
  dmChannelIds: async (q: Queryable, userId: string): Promise<string[]> =>
    (await q('dm_participants').where({ user_id: userId }).whereNull('left_at').select('channel_id')).map(
      (r: { channel_id: string }) => r.channel_id,
    ),
  /** Which of `others` share at least one guild with `userId`. */
  guildPeers: async (q: Queryable, userId: string, others: string[]): Promise<string[]> =>
    others.length === 0
      ? []
      : (
          await q('guild_members as mine')
            .join('guild_members as theirs', 'theirs.guild_id', 'mine.guild_id')
            .where('mine.user_id', userId)
            .whereIn('theirs.user_id', others)
            .distinct('theirs.user_id')
        ).map((r: { user_id: string }) => r.user_id),
  /** Which of `others` are, with `userId`, active participants of at least one DM channel. */
  dmPeers: async (q: Queryable, userId: string, others: string[]): Promise<string[]> =>
    others.length === 0
      ? []
      : (
          await q('dm_participants as mine')
            .join('dm_participants as theirs', 'theirs.channel_id', 'mine.channel_id')
            .where('mine.user_id', userId)
            .whereNull('mine.left_at')
            .whereNull('theirs.left_at')
            .whereIn('theirs.user_id', others)
            .distinct('theirs.user_id')
        ).map((r: { user_id: string }) => r.user_id),
};
