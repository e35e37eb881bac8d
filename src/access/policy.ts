/**
 * Authorization rules for guild management, as pure checks over a loaded MemberContext: required
 * bits, the @everyone ceiling, the role hierarchy and "no granting what you lack". Services call
 * these; the numbers come from permissions.ts.
 */
import { errors } from '../errors.js';
import type { MemberContext } from './loaders.js';
import { EVERYONE_FORBIDDEN, has, highestPosition } from './permissions.js';

export function requirePermission(member: MemberContext, bit: bigint, perms: bigint = member.permissions): void {
  if (!has(perms, bit)) throw errors.forbidden();
}

export function requireOwner(member: MemberContext): void {
  if (!member.isOwner) throw errors.forbidden('Only the guild owner can do that.');
}

/** The @everyone role may never hold the dangerous bits, whatever the client sends. */
export function assertEveryoneAllowed(isEveryone: boolean, bits: bigint): void {
  if (isEveryone && (bits & EVERYONE_FORBIDDEN) !== 0n) {
    throw errors.forbidden('The @everyone role cannot hold administrative permissions.');
  }
}

export const highestOf = (member: MemberContext): number => highestPosition(member.isOwner, member.roles);

/** Nobody manages a role at or above their own highest role (the owner is above every role). */
export function assertBelowActor(member: MemberContext, rolePosition: number): void {
  if (!member.isOwner && rolePosition >= highestOf(member)) {
    throw errors.forbidden('That role is at or above your highest role.');
  }
}

/** Bits being granted must be bits the actor holds (owner and administrators hold all). */
export function assertGrantable(member: MemberContext, granted: bigint, actorPerms: bigint = member.permissions): void {
  if (member.isOwner) return;
  if ((granted & ~actorPerms) !== 0n) throw errors.forbidden('You cannot grant permissions you do not have.');
}

/** Kicking or banning: never the owner, never yourself, never someone at or above you. */
export function assertCanModerate(actor: MemberContext, target: MemberContext | undefined, targetUserId: string): void {
  if (targetUserId === actor.userId) throw errors.forbidden('You cannot do that to yourself.');
  if (!target) return;
  if (target.isOwner) throw errors.forbidden('The guild owner cannot be moderated.');
  if (!actor.isOwner && highestOf(target) >= highestOf(actor)) {
    throw errors.forbidden('That member is at or above your highest role.');
  }
}
