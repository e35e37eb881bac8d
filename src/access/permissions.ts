/**
 * The permission bitfield (DESIGN.md §6) and how effective permissions are computed. Pure functions:
 * no I/O. Permissions travel as decimal strings and are computed as bigint.
 *
 * Effective permission: owner → all; else OR of the member's roles (incl. @everyone); ADMINISTRATOR →
 * all; then channel overrides: @everyone deny then allow, then the member's roles' deny then allow.
 */

export const P = {
  SEND_MESSAGES: 1n << 0n,
  ATTACH_FILES: 1n << 2n,
  VOICE_CONNECT: 1n << 5n,
  VOICE_SPEAK: 1n << 6n,
  VOICE_MUTE_OTHERS: 1n << 7n,
  VOICE_DEAFEN_OTHERS: 1n << 8n,
  VOICE_MOVE_MEMBERS: 1n << 9n,
  MANAGE_MESSAGES: 1n << 10n,
  KICK_MEMBERS: 1n << 12n,
  BAN_MEMBERS: 1n << 13n,
  MANAGE_CHANNELS: 1n << 14n,
  MANAGE_ROLES: 1n << 15n,
  VIEW_AUDIT_LOG: 1n << 16n,
  MANAGE_GUILD: 1n << 17n,
  CREATE_INVITE: 1n << 19n,
  VIEW_CHANNEL: 1n << 24n,
  ADMINISTRATOR: 1n << 30n,
} as const;

export type PermissionName = keyof typeof P;

export const ALL_PERMISSIONS: bigint = Object.values(P).reduce((a, b) => a | b, 0n);

export const EVERYONE_DEFAULT: bigint =
  P.VIEW_CHANNEL | P.SEND_MESSAGES | P.ATTACH_FILES | P.VOICE_CONNECT | P.VOICE_SPEAK | P.CREATE_INVITE;

/** Bits the @everyone role may never hold, whatever a client sends. */
export const EVERYONE_FORBIDDEN: bigint =
  P.ADMINISTRATOR | P.MANAGE_GUILD | P.BAN_MEMBERS | P.KICK_MEMBERS | P.MANAGE_ROLES | P.MANAGE_CHANNELS;

export const has = (perms: bigint, bit: bigint): boolean => (perms & bit) === bit;

/**
 * Parses a wire bitfield (decimal string or number); undefined when invalid. A bit no permission
 * uses (or a value past 64 bits) is refused, not masked: silently storing `"0"` for
 * `"18446744073709551616"` would grant or revoke something other than what the caller sent.
 */
export function parsePermissions(value: unknown): bigint | undefined {
  let v: bigint;
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) v = BigInt(value);
  else if (typeof value === 'string' && /^\d{1,20}$/.test(value)) v = BigInt(value);
  else return undefined;
  return (v & ~ALL_PERMISSIONS) === 0n ? v : undefined;
}

export const toWire = (perms: bigint | number | string): string => BigInt(perms).toString();

export interface RoleLike {
  id: string;
  permissions: bigint | number | string;
  position: number;
  is_everyone: boolean | number;
}

export interface OverrideLike {
  role_id: string;
  allow: bigint | number | string;
  deny: bigint | number | string;
}

/** Guild-level permissions of a member holding `roles` (which must include @everyone). */
export function basePermissions(isOwner: boolean, roles: RoleLike[]): bigint {
  if (isOwner) return ALL_PERMISSIONS;
  let perms = 0n;
  for (const r of roles) perms |= BigInt(r.permissions);
  if (has(perms, P.ADMINISTRATOR)) return ALL_PERMISSIONS;
  return perms;
}

/** Channel-level permissions: base, then @everyone override, then the member's role overrides. */
export function channelPermissions(
  isOwner: boolean,
  roles: RoleLike[],
  overrides: OverrideLike[],
  everyoneRoleId: string,
): bigint {
  let perms = basePermissions(isOwner, roles);
  if (perms === ALL_PERMISSIONS && (isOwner || roles.some((r) => has(BigInt(r.permissions), P.ADMINISTRATOR)))) {
    return ALL_PERMISSIONS;
  }
  const everyone = overrides.find((o) => o.role_id === everyoneRoleId);
  if (everyone) perms = (perms & ~BigInt(everyone.deny)) | BigInt(everyone.allow);
  let allow = 0n;
  let deny = 0n;
  const memberRoleIds = new Set(roles.filter((r) => !r.is_everyone).map((r) => r.id));
  for (const o of overrides) {
    if (o.role_id === everyoneRoleId || !memberRoleIds.has(o.role_id)) continue;
    allow |= BigInt(o.allow);
    deny |= BigInt(o.deny);
  }
  perms = (perms & ~deny) | allow;
  return perms & ALL_PERMISSIONS;
}

/** Highest role position a member holds (owner: +∞); used for the role hierarchy. */
export function highestPosition(isOwner: boolean, roles: RoleLike[]): number {
  if (isOwner) return Number.POSITIVE_INFINITY;
  return roles.reduce((max, r) => Math.max(max, r.position), 0);
}
