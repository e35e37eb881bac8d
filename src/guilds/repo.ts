/** Storage of guilds, members, roles, bans, invites and the guild's audit view: the only knex user here. */
import type { RoleRow } from '../access/repo.js';
import type { Queryable as Q } from '../db/knex.js';
import type { UserRow } from '../users/presenter.js';

/** A page of a per-user list (members, bans): user ids greater than `after`, at most `limit`. */
export interface UserPage {
  after?: string | undefined;
  limit: number;
}

export type { RoleRow } from '../access/repo.js';

export interface GuildRow {
  id: string;
  name: string;
  owner_id: string;
  created_at: number;
  updated_at: number;
}

export interface MemberRow {
  guild_id: string;
  user_id: string;
  nickname: string | null;
  joined_at: number;
}

/** A member row joined with its user's public columns. */
interface MemberUserRow extends MemberRow {
  username: string;
  display_name: string | null;
  user_created_at: number;
}

/** A ban joined with the banned user's public columns. */
export interface BanUserRow {
  user_id: string;
  reason: string | null;
  moderator_id: string | null;
  created_at: number;
  username: string;
  display_name: string | null;
  user_created_at: number;
}

/** An audit row as the guild's audit view shows it (no IP address, no hashes). */
export interface GuildAuditRow {
  id: number;
  user_id: string | null;
  action: string;
  resource_type: string | null;
  resource_id: string | null;
  metadata: string;
  created_at: number;
}

export interface InviteRow {
  code: string;
  guild_id: string;
  creator_id: string | null;
  max_uses: number | null;
  uses: number;
  expires_at: number | null;
  created_at: number;
}

export const guildRepo = {
  find: (q: Q, id: string): Promise<GuildRow | undefined> => q('guilds').where({ id }).first(),
  /**
   * Serialises membership changes of one guild (join vs ban) for the rest of the transaction: on
   * Postgres by locking the guild row; SQLite runs one writer at a time anyway.
   */
  lockMembership: async (q: Q, id: string): Promise<void> => {
    if (q.client.config.client === 'pg') await q('guilds').where({ id }).forUpdate().first('id');
  },
  insert: (q: Q, row: GuildRow) => q('guilds').insert(row),
  update: (q: Q, id: string, patch: Partial<GuildRow>) => q('guilds').where({ id }).update(patch),
  delete: (q: Q, id: string) => q('guilds').where({ id }).delete(),
  listForUser: (q: Q, userId: string): Promise<GuildRow[]> =>
    q('guilds')
      .join('guild_members', 'guild_members.guild_id', 'guilds.id')
      .where('guild_members.user_id', userId)
      .orderBy('guild_members.joined_at', 'desc')
      .orderBy('guilds.id', 'desc')
      .select('guilds.*'),
};

export const memberRepo = {
  find: (q: Q, guildId: string, userId: string): Promise<MemberRow | undefined> =>
    q('guild_members').where({ guild_id: guildId, user_id: userId }).first(),
  insert: (q: Q, row: MemberRow) => q('guild_members').insert(row),
  /** Removes the membership and the member's role assignments. */
  remove: async (q: Q, guildId: string, userId: string): Promise<number> => {
    await q('member_roles').where({ guild_id: guildId, user_id: userId }).delete();
    return q('guild_members').where({ guild_id: guildId, user_id: userId }).delete();
  },
  /** One page of members by user id (ascending), after the cursor; the (guild_id, user_id) key serves it. */
  list: async (
    q: Q,
    guildId: string,
    page: UserPage,
  ): Promise<{ member: MemberRow; user: UserRow; roleIds: string[] }[]> => {
    const query = q('guild_members')
      .join('users', 'users.id', 'guild_members.user_id')
      .where('guild_members.guild_id', guildId);
    if (page.after) query.andWhere('guild_members.user_id', '>', page.after);
    const rows: MemberUserRow[] = await query
      .orderBy('guild_members.user_id', 'asc')
      .limit(page.limit)
      .select(
        'guild_members.guild_id',
        'guild_members.user_id',
        'guild_members.nickname',
        'guild_members.joined_at',
        'users.username',
        'users.display_name',
        'users.created_at as user_created_at',
      );
    const byUser = new Map<string, string[]>();
    if (rows.length > 0) {
      // Only this page's assignments, bounded by the page's first and last user id (same index).
      const roles: { user_id: string; role_id: string }[] = await q('member_roles')
        .where({ guild_id: guildId })
        .andWhere('user_id', '>=', (rows[0] as MemberUserRow).user_id)
        .andWhere('user_id', '<=', (rows[rows.length - 1] as MemberUserRow).user_id)
        .select('user_id', 'role_id');
      for (const r of roles) byUser.set(r.user_id, [...(byUser.get(r.user_id) ?? []), r.role_id]);
    }
    return rows.map((r) => ({
      member: { guild_id: r.guild_id, user_id: r.user_id, nickname: r.nickname, joined_at: r.joined_at },
      user: { id: r.user_id, username: r.username, display_name: r.display_name, created_at: r.user_created_at },
      roleIds: byUser.get(r.user_id) ?? [],
    }));
  },
  roleIds: async (q: Q, guildId: string, userId: string): Promise<string[]> =>
    (await q('member_roles').where({ guild_id: guildId, user_id: userId }).select('role_id')).map(
      (r: { role_id: string }) => r.role_id,
    ),
  addRole: async (q: Q, guildId: string, userId: string, roleId: string): Promise<boolean> => {
    const existing = await q('member_roles').where({ guild_id: guildId, user_id: userId, role_id: roleId }).first();
    if (existing) return false;
    await q('member_roles').insert({ guild_id: guildId, user_id: userId, role_id: roleId });
    return true;
  },
  removeRole: (q: Q, guildId: string, userId: string, roleId: string): Promise<number> =>
    q('member_roles').where({ guild_id: guildId, user_id: userId, role_id: roleId }).delete(),
  user: (q: Q, userId: string): Promise<UserRow | undefined> =>
    q('users').where({ id: userId }).first('id', 'username', 'display_name', 'created_at'),
};

export const roleRepo = {
  list: (q: Q, guildId: string): Promise<RoleRow[]> =>
    q('roles').where({ guild_id: guildId }).orderBy('position', 'desc').orderBy('id', 'desc'),
  insert: (q: Q, row: RoleRow) => q('roles').insert(row),
  update: (q: Q, roleId: string, patch: Partial<RoleRow>) => q('roles').where({ id: roleId }).update(patch),
  delete: async (q: Q, roleId: string): Promise<void> => {
    await q('member_roles').where({ role_id: roleId }).delete();
    await q('channel_overrides').where({ role_id: roleId }).delete();
    await q('roles').where({ id: roleId }).delete();
  },
  holders: async (q: Q, roleId: string): Promise<string[]> =>
    (await q('member_roles').where({ role_id: roleId }).select('user_id')).map((r: { user_id: string }) => r.user_id),
};

export const banRepo = {
  find: (q: Q, guildId: string, userId: string) => q('bans').where({ guild_id: guildId, user_id: userId }).first(),
  upsert: async (
    q: Q,
    row: { guild_id: string; user_id: string; reason: string | null; moderator_id: string; created_at: number },
  ) => {
    await q('bans').insert(row).onConflict(['guild_id', 'user_id']).merge(['reason', 'moderator_id']);
  },
  delete: (q: Q, guildId: string, userId: string): Promise<number> =>
    q('bans').where({ guild_id: guildId, user_id: userId }).delete(),
  /** One page of bans by user id (ascending), after the cursor. */
  list: (q: Q, guildId: string, page: UserPage): Promise<BanUserRow[]> => {
    const query = q('bans').join('users', 'users.id', 'bans.user_id').where('bans.guild_id', guildId);
    if (page.after) query.andWhere('bans.user_id', '>', page.after);
    return query
      .orderBy('bans.user_id', 'asc')
      .limit(page.limit)
      .select(
        'bans.user_id',
        'bans.reason',
        'bans.moderator_id',
        'bans.created_at',
        'users.username',
        'users.display_name',
        'users.created_at as user_created_at',
      );
  },
};

export const inviteRepo = {
  find: (q: Q, code: string): Promise<InviteRow | undefined> => q('invites').where({ code }).first(),
  insert: (q: Q, row: InviteRow) => q('invites').insert(row),
  list: (q: Q, guildId: string): Promise<InviteRow[]> =>
    q('invites').where({ guild_id: guildId }).orderBy('created_at', 'desc').orderBy('code', 'desc'),
  delete: (q: Q, guildId: string, code: string): Promise<number> =>
    q('invites').where({ guild_id: guildId, code }).delete(),
  /** Counts one use atomically; false when the invite is gone, expired or used up. */
  consume: async (q: Q, code: string, now: number): Promise<boolean> => {
    const n = await q('invites')
      .where({ code })
      .andWhere((w) => w.whereNull('max_uses').orWhere('uses', '<', q.ref('max_uses')))
      .andWhere((w) => w.whereNull('expires_at').orWhere('expires_at', '>', now))
      .increment('uses', 1);
    return Number(n) === 1;
  },
};

export const auditRepo = {
  /** Rows whose canonical metadata names the guild (keys sorted, no spaces: an exact substring). */
  forGuild: (q: Q, guildId: string, before: number | undefined, limit: number): Promise<GuildAuditRow[]> => {
    const query = q('audit_log')
      .where('metadata', 'like', `%"guild_id":"${guildId}"%`)
      .orderBy('id', 'desc')
      .limit(limit)
      .select('id', 'user_id', 'action', 'resource_type', 'resource_id', 'metadata', 'created_at');
    if (before !== undefined) query.andWhere('id', '<', before);
    return query;
  },
};
