/** Guild, channel, role and member rows → wire shapes (snake_case, ISO timestamps, bitfields as strings). */
import { iso } from '../ids.js';
import { presentPublicUser, type UserRow } from '../users/presenter.js';
import { toWire } from './permissions.js';
import type { InviteRow } from './repo.js';

export function presentGuild(g: { id: string; name: string; owner_id: string; created_at: number }) {
  return { id: g.id, name: g.name, owner_id: g.owner_id, created_at: iso(g.created_at) };
}

export function presentChannel(c: {
  id: string;
  guild_id: string | null;
  type: string;
  name: string | null;
  topic?: string | null;
  position: number;
  user_limit?: number | null;
  created_at: number;
}) {
  return {
    id: c.id,
    guild_id: c.guild_id,
    type: c.type,
    name: c.name,
    topic: c.topic ?? null,
    position: Number(c.position),
    user_limit: c.user_limit ?? null,
    created_at: iso(c.created_at),
  };
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
}) {
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

export function presentOverride(o: {
  channel_id: string;
  role_id: string;
  allow: bigint | number | string;
  deny: bigint | number | string;
}) {
  return { channel_id: o.channel_id, role_id: o.role_id, allow: toWire(o.allow), deny: toWire(o.deny) };
}

export function presentMember(
  m: { guild_id: string; nickname: string | null; joined_at: number },
  user: UserRow,
  roleIds: string[],
) {
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
