/** Permission bits (DESIGN.md §6) and the guild-level effective permissions used to decide which controls to show. */
import type { Guild, Member, Role } from './types';

export const P = {
  SEND_MESSAGES: 0,
  ATTACH_FILES: 2,
  VOICE_CONNECT: 5,
  VOICE_SPEAK: 6,
  VOICE_MUTE_OTHERS: 7,
  VOICE_DEAFEN_OTHERS: 8,
  VOICE_MOVE_MEMBERS: 9,
  MANAGE_MESSAGES: 10,
  KICK_MEMBERS: 12,
  BAN_MEMBERS: 13,
  MANAGE_CHANNELS: 14,
  MANAGE_ROLES: 15,
  VIEW_AUDIT_LOG: 16,
  MANAGE_GUILD: 17,
  CREATE_INVITE: 19,
  VIEW_CHANNEL: 24,
  ADMINISTRATOR: 30,
} as const;
export type PermissionName = keyof typeof P;

/** Bits `@everyone` may never hold (the server refuses them). */
export const EVERYONE_FORBIDDEN: PermissionName[] = [
  'ADMINISTRATOR',
  'MANAGE_GUILD',
  'BAN_MEMBERS',
  'KICK_MEMBERS',
  'MANAGE_ROLES',
  'MANAGE_CHANNELS',
];

export const ALL = (1n << 31n) - 1n;
export const bit = (name: PermissionName): bigint => 1n << BigInt(P[name]);
export const has = (perms: bigint, name: PermissionName): boolean =>
  (perms & bit('ADMINISTRATOR')) !== 0n || (perms & bit(name)) !== 0n;

/** Owner → all; else the OR of @everyone and the member's roles. Channel overrides are not visible to
 * clients, so this can only be an upper bound; the server decides, and its 403 is shown. */
export function guildPermissions(guild: Guild, roles: Role[], userId: string, member?: Member): bigint {
  if (guild.owner_id === userId) return ALL;
  let perms = 0n;
  for (const r of roles) if (r.is_everyone || member?.roles.includes(r.id)) perms |= BigInt(r.permissions);
  return perms & bit('ADMINISTRATOR') ? ALL : perms;
}

/** The highest role position of a member (owner: above everything). */
export function topPosition(guild: Guild, roles: Role[], userId: string, member?: Member): number {
  if (guild.owner_id === userId) return Number.POSITIVE_INFINITY;
  return Math.max(0, ...roles.filter((r) => member?.roles.includes(r.id)).map((r) => r.position));
}
