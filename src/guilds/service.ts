/**
 * Guild verbs: create (with @everyone, #general and the General voice channel), read, update,
 * transfer, delete, leave; members, kicks, bans, roles, member roles, invites and the guild's audit
 * view. Every verb loads the caller's membership (no membership = 404), authorizes through the access
 * kernel's policy, writes in one transaction with its audit row, and publishes through an Outbox after
 * the commit.
 */
import { loadMember, memberOr404, roleOr404 } from '../access/loaders.js';
import { EVERYONE_DEFAULT, P, toWire } from '../access/permissions.js';
import {
  assertBelowActor,
  assertCanModerate,
  assertEveryoneAllowed,
  assertGrantable,
  highestOf,
  requireOwner,
  requirePermission,
} from '../access/policy.js';
import type { Actor } from '../actor.js';
import { recordActorAudit } from '../audit/writer.js';
import { presentChannel } from '../channels/presenter.js';
import { channelRepo } from '../channels/repo.js';
import { defaultChannels } from '../channels/service.js';
import type { Config } from '../config/index.js';
import { randomToken } from '../crypto/random.js';
import type { Db, Queryable as Q } from '../db/knex.js';
import { rotateGuildMegolmSessions } from '../e2ee/megolm.js';
import { errors } from '../errors.js';
import type { MemberWire } from '../events/event-map.js';
import type { EventHub } from '../events/hub.js';
import { isId, newId, nowMs } from '../ids.js';
import type { Logger } from '../logger.js';
import { attachmentRepo } from '../uploads/repo.js';
import { removeStoredFiles } from '../uploads/storage.js';
import {
  presentBan,
  presentGuild,
  presentGuildAuditRow,
  presentInvite,
  presentMember,
  presentRole,
} from './presenter.js';
import { auditRepo, banRepo, guildRepo, inviteRepo, memberRepo, type RoleRow, roleRepo } from './repo.js';
import type { GuildCreate, GuildUpdate, InviteCreate, PageQuery, RoleCreate, RoleUpdate } from './schema.js';

export interface GuildDeps {
  db: Db;
  events: EventHub;
  config: Pick<Config, 'dataDir'>;
  logger: Logger;
}
type Ctx = GuildDeps;

const isEveryoneName = (name: string) => name.trim().toLowerCase() === '@everyone';

// ---------------------------------------------------------------- guilds

export async function createGuild(ctx: Ctx, actor: Actor, input: GuildCreate) {
  const now = nowMs();
  const guild = { id: newId(), name: input.name, owner_id: actor.userId, created_at: now, updated_at: now };
  const everyone: RoleRow = {
    id: newId(),
    guild_id: guild.id,
    name: '@everyone',
    color: null,
    permissions: toWire(EVERYONE_DEFAULT),
    position: 0,
    is_everyone: true,
    created_at: now,
  };
  const channels = defaultChannels(guild.id, now);
  await ctx.db.transaction(async (trx) => {
    await guildRepo.insert(trx, guild);
    await roleRepo.insert(trx, everyone);
    await memberRepo.insert(trx, { guild_id: guild.id, user_id: actor.userId, nickname: null, joined_at: now });
    await channelRepo.insert(trx, channels);
  });
  ctx.events.outbox().accessChanged(guild.id, [actor.userId]).flush();
  return { ...presentGuild(guild), roles: [presentRole(everyone)], channels: channels.map(presentChannel) };
}

export async function listGuilds(ctx: Ctx, actor: Actor) {
  return (await guildRepo.listForUser(ctx.db, actor.userId)).map(presentGuild);
}

export async function getGuild(ctx: Ctx, actor: Actor, guildId: string) {
  await memberOr404(ctx.db, guildId, actor.userId);
  return presentGuild((await guildRepo.find(ctx.db, guildId))!);
}

export async function updateGuild(ctx: Ctx, actor: Actor, guildId: string, input: GuildUpdate) {
  const out = ctx.events.outbox();
  const guild = await ctx.db.transaction(async (trx) => {
    const member = await memberOr404(trx, guildId, actor.userId);
    requirePermission(member, P.MANAGE_GUILD);
    const patch: Record<string, unknown> = { updated_at: nowMs() };
    if (input.name !== undefined) patch.name = input.name;
    const current = (await guildRepo.find(trx, guildId))!;
    if (input.owner_id !== undefined && input.owner_id !== current.owner_id) {
      requireOwner(member);
      if (!(await memberRepo.find(trx, guildId, input.owner_id))) {
        throw errors.validation('The new owner must be a member.', [{ path: 'owner_id', message: 'not a member' }]);
      }
      patch.owner_id = input.owner_id;
      await recordActorAudit(trx, actor, 'guild.transfer', 'guild', guildId, {
        guild_id: guildId,
        new_owner_id: input.owner_id,
      });
      out.accessChanged(guildId, [actor.userId, input.owner_id]);
    }
    await guildRepo.update(trx, guildId, patch);
    return (await guildRepo.find(trx, guildId))!;
  });
  const wire = presentGuild(guild);
  out.toGuild(guildId, 'guild_update', wire).flush();
  return wire;
}

export async function deleteGuild(ctx: Ctx, actor: Actor, guildId: string): Promise<void> {
  const files = await ctx.db.transaction(async (trx) => {
    const member = await memberOr404(trx, guildId, actor.userId);
    requireOwner(member);
    const files = await attachmentRepo.filesOfGuild(trx, guildId);
    await recordActorAudit(trx, actor, 'guild.delete', 'guild', guildId, { guild_id: guildId });
    await guildRepo.delete(trx, guildId);
    return files;
  });
  ctx.events.outbox().toGuild(guildId, 'guild_delete', { id: guildId }).accessChanged(guildId).flush();
  await removeStoredFiles(ctx.config.dataDir, files, ctx.logger);
}

export async function leaveGuild(ctx: Ctx, actor: Actor, guildId: string): Promise<void> {
  await ctx.db.transaction(async (trx) => {
    const member = await memberOr404(trx, guildId, actor.userId);
    if (member.isOwner) throw errors.forbidden('The owner must transfer ownership or delete the guild first.');
    await memberRepo.remove(trx, guildId, actor.userId);
  });
  ctx.events
    .outbox()
    .toGuild(guildId, 'member_leave', { guild_id: guildId, user_id: actor.userId })
    .accessChanged(guildId, [actor.userId])
    .flush();
  await rotateGuildMegolmSessions(ctx, guildId);
}

// ---------------------------------------------------------------- members, kicks, bans

export async function listMembers(ctx: Ctx, actor: Actor, guildId: string) {
  await memberOr404(ctx.db, guildId, actor.userId);
  return (await memberRepo.list(ctx.db, guildId)).map((m) => presentMember(m.member, m.user, m.roleIds));
}

export async function kickMember(ctx: Ctx, actor: Actor, guildId: string, userId: string): Promise<void> {
  await ctx.db.transaction(async (trx) => {
    const me = await memberOr404(trx, guildId, actor.userId);
    requirePermission(me, P.KICK_MEMBERS);
    const target = isId(userId) ? await loadMember(trx, guildId, userId) : undefined;
    if (!target) throw errors.notFound('No such member.');
    assertCanModerate(me, target, userId);
    await memberRepo.remove(trx, guildId, userId);
    await recordActorAudit(trx, actor, 'member.kick', 'user', userId, { guild_id: guildId });
  });
  ctx.events
    .outbox()
    .toGuild(guildId, 'member_leave', { guild_id: guildId, user_id: userId })
    .accessChanged(guildId, [userId])
    .flush();
  await rotateGuildMegolmSessions(ctx, guildId);
}

export async function listBans(ctx: Ctx, actor: Actor, guildId: string) {
  const me = await memberOr404(ctx.db, guildId, actor.userId);
  requirePermission(me, P.BAN_MEMBERS);
  return (await banRepo.list(ctx.db, guildId)).map(presentBan);
}

export async function banMember(
  ctx: Ctx,
  actor: Actor,
  guildId: string,
  userId: string,
  reason: string | undefined,
): Promise<void> {
  let wasMember = false;
  await ctx.db.transaction(async (trx) => {
    if (isId(guildId)) await guildRepo.lockMembership(trx, guildId); // against a concurrent join
    const me = await memberOr404(trx, guildId, actor.userId);
    requirePermission(me, P.BAN_MEMBERS);
    if (!isId(userId) || !(await memberRepo.user(trx, userId))) throw errors.notFound('No such user.');
    const target = await loadMember(trx, guildId, userId);
    assertCanModerate(me, target, userId);
    wasMember = Boolean(target);
    if (target) await memberRepo.remove(trx, guildId, userId);
    await banRepo.upsert(trx, {
      guild_id: guildId,
      user_id: userId,
      reason: reason ?? null,
      moderator_id: actor.userId,
      created_at: nowMs(),
    });
    await recordActorAudit(trx, actor, 'member.ban', 'user', userId, { guild_id: guildId, reason: reason ?? null });
  });
  const out = ctx.events.outbox();
  if (wasMember) out.toGuild(guildId, 'member_leave', { guild_id: guildId, user_id: userId });
  out.accessChanged(guildId, [userId]).flush();
  if (wasMember) await rotateGuildMegolmSessions(ctx, guildId);
}

export async function unbanMember(ctx: Ctx, actor: Actor, guildId: string, userId: string): Promise<void> {
  await ctx.db.transaction(async (trx) => {
    if (isId(guildId)) await guildRepo.lockMembership(trx, guildId); // against a concurrent join
    const me = await memberOr404(trx, guildId, actor.userId);
    requirePermission(me, P.BAN_MEMBERS);
    if (!isId(userId) || (await banRepo.delete(trx, guildId, userId)) === 0) throw errors.notFound('No such ban.');
    await recordActorAudit(trx, actor, 'member.unban', 'user', userId, { guild_id: guildId });
  });
  ctx.events.outbox().accessChanged(guildId, [userId]).flush();
}

// ---------------------------------------------------------------- roles

export async function listRoles(ctx: Ctx, actor: Actor, guildId: string) {
  await memberOr404(ctx.db, guildId, actor.userId);
  return (await roleRepo.list(ctx.db, guildId)).map(presentRole);
}

export async function createRole(ctx: Ctx, actor: Actor, guildId: string, input: RoleCreate) {
  const role = await ctx.db.transaction(async (trx) => {
    const me = await memberOr404(trx, guildId, actor.userId);
    requirePermission(me, P.MANAGE_ROLES);
    const perms = input.permissions ?? 0n;
    // Nobody defines a second @everyone, least of all one with administrative bits.
    assertEveryoneAllowed(isEveryoneName(input.name), perms);
    if (isEveryoneName(input.name)) throw errors.forbidden('The name @everyone is reserved.');
    const position = input.position ?? 1;
    assertBelowActor(me, position);
    assertGrantable(me, perms);
    const row: RoleRow = {
      id: newId(),
      guild_id: guildId,
      name: input.name,
      color: input.color ?? null,
      permissions: toWire(perms),
      position,
      is_everyone: false,
      created_at: nowMs(),
    };
    await roleRepo.insert(trx, row);
    await recordActorAudit(trx, actor, 'role.create', 'role', row.id, {
      guild_id: guildId,
      name: row.name,
      permissions: row.permissions,
      position,
    });
    return row;
  });
  const wire = presentRole(role);
  ctx.events.outbox().toGuild(guildId, 'role_create', wire).flush();
  return wire;
}

export async function updateRole(ctx: Ctx, actor: Actor, guildId: string, roleId: string, input: RoleUpdate) {
  const role = await ctx.db.transaction(async (trx) => {
    const me = await memberOr404(trx, guildId, actor.userId);
    requirePermission(me, P.MANAGE_ROLES);
    const role = await roleOr404(trx, guildId, roleId);
    const isEveryone = Boolean(role.is_everyone);
    if (input.permissions !== undefined) assertEveryoneAllowed(isEveryone, input.permissions);
    if (input.name !== undefined && isEveryoneName(input.name) && !isEveryone) {
      throw errors.forbidden('The name @everyone is reserved.');
    }
    if (isEveryone && (input.name !== undefined || input.position !== undefined)) {
      throw errors.forbidden('The @everyone role keeps its name and position.');
    }
    assertBelowActor(me, Number(role.position));
    if (input.position !== undefined) assertBelowActor(me, input.position);
    const patch: Partial<RoleRow> = {};
    if (input.name !== undefined) patch.name = input.name;
    if (input.color !== undefined) patch.color = input.color;
    if (input.position !== undefined) patch.position = input.position;
    if (input.permissions !== undefined) {
      assertGrantable(me, input.permissions & ~BigInt(role.permissions));
      patch.permissions = toWire(input.permissions);
    }
    await roleRepo.update(trx, roleId, patch);
    await recordActorAudit(trx, actor, 'role.update', 'role', roleId, {
      guild_id: guildId,
      changes: Object.fromEntries(Object.entries(patch).map(([k, v]) => [k, v === null ? null : String(v)])),
    });
    return roleOr404(trx, guildId, roleId);
  });
  const wire = presentRole(role);
  ctx.events.outbox().toGuild(guildId, 'role_update', wire).accessChanged(guildId).flush();
  return wire;
}

export async function deleteRole(ctx: Ctx, actor: Actor, guildId: string, roleId: string): Promise<void> {
  await ctx.db.transaction(async (trx) => {
    const me = await memberOr404(trx, guildId, actor.userId);
    requirePermission(me, P.MANAGE_ROLES);
    const role = await roleOr404(trx, guildId, roleId);
    if (role.is_everyone) throw errors.forbidden('The @everyone role cannot be deleted.');
    assertBelowActor(me, Number(role.position));
    await roleRepo.delete(trx, roleId);
    await recordActorAudit(trx, actor, 'role.delete', 'role', roleId, { guild_id: guildId, name: role.name });
  });
  ctx.events.outbox().toGuild(guildId, 'role_delete', { guild_id: guildId, id: roleId }).accessChanged(guildId).flush();
}

async function changeMemberRole(ctx: Ctx, actor: Actor, guildId: string, userId: string, roleId: string, add: boolean) {
  const result = await ctx.db.transaction(async (trx) => {
    const me = await memberOr404(trx, guildId, actor.userId);
    requirePermission(me, P.MANAGE_ROLES);
    const role = await roleOr404(trx, guildId, roleId);
    const target = isId(userId) ? await memberRepo.find(trx, guildId, userId) : undefined;
    if (!target) throw errors.notFound('No such member.');
    if (role.is_everyone) throw errors.forbidden('Everyone holds the @everyone role.');
    assertBelowActor(me, Number(role.position));
    // Assigning a role grants its bits: only bits the actor holds (no self-promotion to ADMINISTRATOR
    // through a low-placed admin role).
    if (add) assertGrantable(me, BigInt(role.permissions));
    // Nobody changes the roles of a member ranked at or above them (themselves excepted).
    if (userId !== actor.userId) {
      const targetCtx = await loadMember(trx, guildId, userId);
      if (targetCtx && !me.isOwner && (targetCtx.isOwner || highestOf(targetCtx) >= highestOf(me))) {
        throw errors.forbidden('That member is at or above your highest role.');
      }
    }
    const changed = add
      ? await memberRepo.addRole(trx, guildId, userId, roleId)
      : (await memberRepo.removeRole(trx, guildId, userId, roleId)) > 0;
    if (!add && !changed) throw errors.notFound('The member does not hold that role.');
    if (changed) {
      await recordActorAudit(trx, actor, add ? 'member.role_add' : 'member.role_remove', 'user', userId, {
        guild_id: guildId,
        role_id: roleId,
      });
    }
    const user = (await memberRepo.user(trx, userId))!;
    return { changed, member: presentMember(target, user, await memberRepo.roleIds(trx, guildId, userId)) };
  });
  if (result.changed) {
    ctx.events.outbox().toGuild(guildId, 'member_update', result.member).accessChanged(guildId, [userId]).flush();
  }
}

export const addMemberRole = (ctx: Ctx, actor: Actor, guildId: string, userId: string, roleId: string) =>
  changeMemberRole(ctx, actor, guildId, userId, roleId, true);
export const removeMemberRole = (ctx: Ctx, actor: Actor, guildId: string, userId: string, roleId: string) =>
  changeMemberRole(ctx, actor, guildId, userId, roleId, false);

// ---------------------------------------------------------------- invites

export async function listInvites(ctx: Ctx, actor: Actor, guildId: string) {
  const me = await memberOr404(ctx.db, guildId, actor.userId);
  requirePermission(me, P.CREATE_INVITE);
  return (await inviteRepo.list(ctx.db, guildId)).map(presentInvite);
}

export async function createInvite(ctx: Ctx, actor: Actor, guildId: string, input: InviteCreate) {
  const me = await memberOr404(ctx.db, guildId, actor.userId);
  requirePermission(me, P.CREATE_INVITE);
  const now = nowMs();
  const row = {
    code: randomToken(9),
    guild_id: guildId,
    creator_id: actor.userId,
    max_uses: input.max_uses ?? null,
    uses: 0,
    expires_at: input.expires_in ? now + input.expires_in * 1000 : null,
    created_at: now,
  };
  await inviteRepo.insert(ctx.db, row);
  return presentInvite(row);
}

/** The invite's creator may revoke it; anyone else needs MANAGE_GUILD. */
export async function deleteInvite(ctx: Ctx, actor: Actor, guildId: string, code: string): Promise<void> {
  const me = await memberOr404(ctx.db, guildId, actor.userId);
  const invite = await inviteRepo.find(ctx.db, code);
  if (!invite || invite.guild_id !== guildId) throw errors.notFound('No such invite.');
  if (invite.creator_id !== actor.userId) requirePermission(me, P.MANAGE_GUILD);
  else requirePermission(me, P.CREATE_INVITE);
  await inviteRepo.delete(ctx.db, guildId, code);
}

/**
 * Redeems an invite for a user inside the caller's transaction: one use is claimed atomically (never
 * past max_uses, never after expiry), the user becomes a member. Already a member: nothing is used.
 * NOT_FOUND for an unknown, expired or used-up code; FORBIDDEN for a banned user. Shared by "join by
 * invite" and registration in `invite` mode.
 */
export async function redeemInvite(
  trx: Q,
  code: string,
  userId: string,
  now: number,
): Promise<{ guild: Awaited<ReturnType<typeof guildRepo.find>> & {}; joined: MemberWire | undefined }> {
  const invite = await inviteRepo.find(trx, code);
  if (!invite) throw errors.notFound('No such invite.');
  const guild = await guildRepo.find(trx, invite.guild_id);
  if (!guild) throw errors.notFound('No such invite.');
  // A ban committing between our ban check and our insert would leave a banned member.
  await guildRepo.lockMembership(trx, guild.id);
  if (await memberRepo.find(trx, guild.id, userId)) return { guild, joined: undefined };
  if (await banRepo.find(trx, guild.id, userId)) throw errors.forbidden('You are banned from this guild.');
  if (!(await inviteRepo.consume(trx, code, now))) throw errors.notFound('No such invite.');
  const member = { guild_id: guild.id, user_id: userId, nickname: null, joined_at: now };
  await memberRepo.insert(trx, member);
  const user = (await memberRepo.user(trx, userId))!;
  return { guild, joined: presentMember(member, user, []) };
}

/** After the redeeming transaction commits: the new member's view and everyone's member list. */
export function announceJoin(events: EventHub, guildId: string, userId: string, joined: MemberWire): void {
  events.outbox().accessChanged(guildId, [userId]).toGuild(guildId, 'member_join', joined).flush();
}

export async function joinByInvite(ctx: Ctx, actor: Actor, code: string) {
  const result = await ctx.db.transaction((trx) => redeemInvite(trx, code, actor.userId, nowMs()));
  if (result.joined) announceJoin(ctx.events, result.guild.id, actor.userId, result.joined);
  return presentGuild(result.guild);
}

// ---------------------------------------------------------------- audit

export async function guildAuditLog(ctx: Ctx, actor: Actor, guildId: string, page: PageQuery) {
  const me = await memberOr404(ctx.db, guildId, actor.userId);
  requirePermission(me, P.VIEW_AUDIT_LOG);
  const rows = await auditRepo.forGuild(
    ctx.db,
    guildId,
    page.before === undefined ? undefined : Number(page.before),
    page.limit,
  );
  return rows.map(presentGuildAuditRow);
}
