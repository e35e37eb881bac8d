/** Guild, role, member and invite rows → wire shapes (snake_case, ISO timestamps, bitfields as strings). */
import { toWire } from '../access/permissions.js';
import type { GuildWire, MemberWire, RoleWire } from '../events/event-map.js';
import { iso } from '../ids.js';
import { presentPublicUser, type UserRow } from '../users/presenter.js';
import type { BanUserRow, GuildAuditRow, InviteRow } from './repo.js';

export function presentGuild(g: { id: string; name: string; owner_id: string; created_at: number }): GuildWire {
  return { id: g.id, name: g.name, owner_id: g.owner_id, created_at: iso(g.created_at) };
}

export function presentRole(r: {
  id: string;
  guild_id: string;
  name: string;
  color: string | null;
  permissions: bigint | number | string;
  position: number;
  is_everyone: boolean | number;
  created_at: number;
}): RoleWire {
  return {
    id: r.id,
    guild_id: r.guild_id,
    name: r.name,
    color: r.color,
    permissions: toWire(r.permissions),
    position: Number(r.position),
    is_everyone: Boolean(r.is_everyone),
    created_at: iso(r.created_at),
  };
}

export function presentMember(
  m: { guild_id: string; nickname: string | null; joined_at: number },
  user: UserRow,
  roleIds: string[],
): MemberWire {
  return {
    guild_id: m.guild_id,
    user: presentPublicUser(user),
    nickname: m.nickname,
    roles: roleIds,
    joined_at: iso(m.joined_at),
  };
}

export function presentInvite(i: InviteRow) {
  return {
    code: i.code,
    guild_id: i.guild_id,
    creator_id: i.creator_id,
    max_uses: i.max_uses,
    uses: Number(i.uses),
    expires_at: iso(i.expires_at),
    created_at: iso(i.created_at),
  };
}

export function presentBan(b: BanUserRow) {
  return {
    user: presentPublicUser({
      id: b.user_id,
      username: b.username,
      display_name: b.display_name,
      created_at: b.user_created_at,
    }),
    reason: b.reason,
    moderator_id: b.moderator_id,
    created_at: iso(b.created_at),
  };
}

export function presentGuildAuditRow(r: GuildAuditRow) {
  return {
    id: String(r.id),
    user_id: r.user_id,
    action: r.action,
    resource_type: r.resource_type,
    resource_id: r.resource_id,
    metadata: JSON.parse(r.metadata) as Record<string, unknown>,
    created_at: iso(r.created_at),
  };
}
