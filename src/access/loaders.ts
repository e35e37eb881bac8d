/**
 * The access kernel's loaders: a member's context in a guild, a channel as a user sees it (guild
 * channels through roles and overrides, DM channels through participation), everything a user may
 * see, and the 404 guards built on them. Every feature and transport asks here; nobody recomputes
 * permissions elsewhere. A resource the caller may not see is indistinguishable from a missing one.
 */
import type { Queryable } from '../db/knex.js';
import { errors } from '../errors.js';
import { isId } from '../ids.js';
import { basePermissions, channelPermissions, has, P, type RoleLike } from './permissions.js';
import { accessRepo, type ChannelRow } from './repo.js';

export type { ChannelRow } from './repo.js';

export interface MemberContext {
  guildId: string;
  userId: string;
  isOwner: boolean;
  roles: RoleLike[];
  everyoneRoleId: string;
  /** Guild-level permissions. */
  permissions: bigint;
}

export interface ChannelAccess {
  channel: ChannelRow;
  /** For guild channels; undefined for DMs. */
  member?: MemberContext;
  permissions: bigint;
}

/** What a DM participant may do in the DM channel (there are no roles in DMs). */
export const DM_PERMISSIONS = P.VIEW_CHANNEL | P.SEND_MESSAGES | P.ATTACH_FILES | P.VOICE_CONNECT | P.VOICE_SPEAK;

/** The member's context in a guild, or undefined when the user is not a member. */
export async function loadMember(q: Queryable, guildId: string, userId: string): Promise<MemberContext | undefined> {
  const guild = await accessRepo.guildOwner(q, guildId);
  if (!guild) return undefined;
  if (!(await accessRepo.isMember(q, guildId, userId))) return undefined;
  const roles = await accessRepo.memberRoles(q, guildId, userId);
  const everyone = roles.find((r) => Boolean(r.is_everyone));
  const isOwner = guild.owner_id === userId;
  return {
    guildId,
    userId,
    isOwner,
    roles,
    everyoneRoleId: everyone?.id ?? '',
    permissions: basePermissions(isOwner, roles),
  };
}

/**
 * A channel as the user sees it, or undefined when it does not exist or the user may not VIEW it
 * (callers answer 404 either way: no existence leak).
 */
export async function loadChannelAccess(
  q: Queryable,
  channelId: string,
  userId: string,
): Promise<ChannelAccess | undefined> {
  const channel = await accessRepo.channel(q, channelId);
  if (!channel) return undefined;
  if (!channel.guild_id) {
    if (!(await accessRepo.isDmParticipant(q, channelId, userId))) return undefined;
    return { channel, permissions: DM_PERMISSIONS };
  }
  const member = await loadMember(q, channel.guild_id, userId);
  if (!member) return undefined;
  const overrides = await accessRepo.channelOverrides(q, channelId);
  const permissions = channelPermissions(member.isOwner, member.roles, overrides, member.everyoneRoleId);
  if (!has(permissions, P.VIEW_CHANNEL)) return undefined;
  return { channel, member, permissions };
}

/** Whether a member may VIEW a channel, given the channel's overrides. */
export const canView = (member: MemberContext, overrides: Parameters<typeof channelPermissions>[2]): boolean =>
  has(channelPermissions(member.isOwner, member.roles, overrides, member.everyoneRoleId), P.VIEW_CHANNEL);

/** The guild's channels a member may VIEW, in position order. */
export async function visibleGuildChannels(q: Queryable, member: MemberContext): Promise<ChannelRow[]> {
  const channels = await accessRepo.guildChannels(q, member.guildId);
  const overrides = await accessRepo.overridesOf(
    q,
    channels.map((c) => c.id),
  );
  return channels.filter((c) =>
    canView(
      member,
      overrides.filter((o) => o.channel_id === c.id),
    ),
  );
}

export interface Visibility {
  guildIds: string[];
  /** Guild channels the user may VIEW plus DM channels they are in. */
  channelIds: string[];
}

/** Everything a user may currently see: the definition the gateway's batched reads must agree with. */
export async function visibleTo(q: Queryable, userId: string): Promise<Visibility> {
  const guildIds = await accessRepo.memberGuildIds(q, userId);
  const channelIds: string[] = [];
  for (const guildId of guildIds) {
    const member = await loadMember(q, guildId, userId);
    if (!member) continue;
    for (const c of await visibleGuildChannels(q, member)) channelIds.push(c.id);
  }
  channelIds.push(...(await accessRepo.dmChannelIds(q, userId)));
  return { guildIds, channelIds };
}

/** The caller's membership, or 404 (not a member, unknown guild, malformed id: all look the same). */
export async function memberOr404(q: Queryable, guildId: string, userId: string): Promise<MemberContext> {
  const member = isId(guildId) ? await loadMember(q, guildId, userId) : undefined;
  if (!member) throw errors.notFound('No such guild.');
  return member;
}

/** A role of the guild, or 404. */
export async function roleOr404(q: Queryable, guildId: string, roleId: string) {
  const role = isId(roleId) ? await accessRepo.role(q, guildId, roleId) : undefined;
  if (!role) throw errors.notFound('No such role.');
  return role;
}

/** The channel as the caller sees it (uncached: inside transactions); 404 when not visible. */
export async function channelOr404(q: Queryable, channelId: string, userId: string): Promise<ChannelAccess> {
  const access = isId(channelId) ? await loadChannelAccess(q, channelId, userId) : undefined;
  if (!access) throw errors.notFound('No such channel.');
  return access;
}

/**
 * Which of `others` the user is related to (E2EE key directory and to-device relay): they share a
 * guild or an active DM, or it is the user. Keys of anyone else are 404: no cold contact, no leak.
 */
export async function relatedUsers(q: Queryable, userId: string, others: string[]): Promise<Set<string>> {
  const unique = [...new Set(others.filter(isId))];
  const related = new Set<string>(unique.filter((o) => o === userId));
  const rest = unique.filter((o) => o !== userId);
  if (rest.length === 0) return related;
  for (const u of await accessRepo.guildPeers(q, userId, rest)) related.add(u);
  const left = rest.filter((o) => !related.has(o));
  for (const u of await accessRepo.dmPeers(q, userId, left)) related.add(u);
  return related;
}

/** Which of `others` share a guild with the user (who may open a DM with whom, unless an admin). */
export async function guildPeers(q: Queryable, userId: string, others: string[]): Promise<Set<string>> {
  return new Set(await accessRepo.guildPeers(q, userId, [...new Set(others.filter(isId))]));
}
