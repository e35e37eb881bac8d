/**
 * Channel verbs: list the channels a member may view, create, read, update, delete, and per-role
 * overrides. A channel the caller cannot VIEW is 404 (no existence leak); one they can view but not
 * manage is 403. Channel-level MANAGE_CHANNELS (after overrides) is what counts.
 */
import type { AppContext } from '../app/context.js';
import { recordActorAudit } from '../audit/writer.js';
import { errors } from '../errors.js';
import { type ChannelAccess, loadChannelAccess } from '../guilds/access.js';
import { Outbox } from '../guilds/events.js';
import { channelPermissions, has, P, toWire } from '../guilds/permissions.js';
import { assertBelowActor, assertEveryoneAllowed, assertGrantable, requirePermission } from '../guilds/policy.js';
import { presentChannel, presentOverride } from '../guilds/presenter.js';
import { roleRepo } from '../guilds/repo.js';
import { isId } from '../guilds/schema.js';
import { type Actor, memberOr404 } from '../guilds/service.js';
import { newId, nowMs } from '../ids.js';
import { removeStoredFiles } from '../uploads/storage.js';
import { channelRepo } from './repo.js';

type Ctx = Pick<AppContext, 'db' | 'bus' | 'config' | 'logger'>;
type Q = AppContext['db'];

/** The channel as the caller sees it; 404 when it does not exist or is not visible to them. */
export async function channelOr404(db: Q, channelId: string, userId: string): Promise<ChannelAccess> {
  const access = isId(channelId) ? await loadChannelAccess(db, channelId, userId) : undefined;
  if (!access) throw errors.notFound('No such channel.');
  return access;
}

/** A guild channel the caller may view (DM channels are managed by the DM feature). */
async function guildChannelOr404(db: Q, channelId: string, userId: string) {
  const access = await channelOr404(db, channelId, userId);
  if (!access.member || !access.channel.guild_id) throw errors.notFound('No such channel.');
  return access as ChannelAccess & { member: NonNullable<ChannelAccess['member']> };
}

export async function listChannels(ctx: Ctx, actor: Actor, guildId: string) {
  const me = await memberOr404(ctx.db, guildId, actor.userId);
  const channels = await channelRepo.listForGuild(ctx.db, guildId);
  const overrides = await channelRepo.overridesFor(
    ctx.db,
    channels.map((c) => c.id),
  );
  return channels
    .filter((c) =>
      has(
        channelPermissions(
          me.isOwner,
          me.roles,
          overrides.filter((o) => o.channel_id === c.id),
          me.everyoneRoleId,
        ),
        P.VIEW_CHANNEL,
      ),
    )
    .map(presentChannel);
}

export async function createChannel(
  ctx: Ctx,
  actor: Actor,
  guildId: string,
  input: {
    name: string;
    type: 'text' | 'voice';
    topic?: string | null | undefined;
    position?: number | undefined;
    user_limit?: number | null | undefined;
  },
) {
  const me = await memberOr404(ctx.db, guildId, actor.userId);
  requirePermission(me, P.MANAGE_CHANNELS);
  if (input.type === 'text' && input.user_limit != null) {
    throw errors.validation('Only voice channels have a user limit.', [{ path: 'user_limit', message: 'voice only' }]);
  }
  const now = nowMs();
  const row = {
    id: newId(),
    guild_id: guildId,
    type: input.type,
    name: input.name,
    topic: input.topic ?? null,
    position: input.position ?? (await channelRepo.listForGuild(ctx.db, guildId)).length,
    user_limit: input.user_limit ?? null,
    created_at: now,
    updated_at: now,
  };
  await channelRepo.insert(ctx.db, row);
  const wire = presentChannel(row);
  new Outbox().channelCreated(guildId, row.id, wire).flush(ctx.bus);
  return wire;
}

export async function getChannel(ctx: Ctx, actor: Actor, channelId: string) {
  return presentChannel((await channelOr404(ctx.db, channelId, actor.userId)).channel as any);
}

export async function updateChannel(
  ctx: Ctx,
  actor: Actor,
  channelId: string,
  input: {
    name?: string | undefined;
    topic?: string | null | undefined;
    position?: number | undefined;
    user_limit?: number | null | undefined;
  },
) {
  const { channel, member, permissions } = await guildChannelOr404(ctx.db, channelId, actor.userId);
  requirePermission(member, P.MANAGE_CHANNELS, permissions);
  if (input.user_limit != null && channel.type !== 'voice') {
    throw errors.validation('Only voice channels have a user limit.', [{ path: 'user_limit', message: 'voice only' }]);
  }
  const patch: Record<string, unknown> = { updated_at: nowMs() };
  for (const k of ['name', 'topic', 'position', 'user_limit'] as const) if (input[k] !== undefined) patch[k] = input[k];
  await channelRepo.update(ctx.db, channelId, patch);
  const wire = presentChannel((await channelRepo.find(ctx.db, channelId)) as any);
  new Outbox().channelUpdated(channel.guild_id!, channelId, wire).flush(ctx.bus);
  return wire;
}

export async function deleteChannel(ctx: Ctx, actor: Actor, channelId: string): Promise<void> {
  const { channel, member, permissions } = await guildChannelOr404(ctx.db, channelId, actor.userId);
  requirePermission(member, P.MANAGE_CHANNELS, permissions);
  const files = await ctx.db.transaction(async (trx) => {
    const files = await channelRepo.attachmentFiles(trx, channelId);
    await channelRepo.delete(trx, channelId);
    return files;
  });
  new Outbox()
    .channelDeleted(channel.guild_id!, channelId, { id: channelId, guild_id: channel.guild_id })
    .flush(ctx.bus);
  await removeStoredFiles(ctx.config.dataDir, files, ctx.logger);
}

export async function setOverride(
  ctx: Ctx,
  actor: Actor,
  channelId: string,
  roleId: string,
  input: { allow: bigint; deny: bigint },
) {
  const override = await ctx.db.transaction(async (trx) => {
    const { channel, member, permissions } = await guildChannelOr404(trx as any, channelId, actor.userId);
    requirePermission(member, P.MANAGE_CHANNELS, permissions);
    const role = isId(roleId) ? await roleRepo.find(trx, channel.guild_id!, roleId) : undefined;
    if (!role) throw errors.notFound('No such role.');
    assertEveryoneAllowed(Boolean(role.is_everyone), input.allow);
    assertBelowActor(member, Number(role.position));
    const previous = await channelRepo.findOverride(trx, channelId, roleId);
    assertGrantable(member, input.allow & ~BigInt(previous?.allow ?? 0), permissions);
    const row = { channel_id: channelId, role_id: roleId, allow: toWire(input.allow), deny: toWire(input.deny) };
    await channelRepo.upsertOverride(trx, row);
    await recordActorAudit(trx, actor, 'channel.override_update', 'channel', channelId, {
      guild_id: channel.guild_id,
      role_id: roleId,
      allow: row.allow,
      deny: row.deny,
    });
    return { row, guildId: channel.guild_id! };
  });
  new Outbox().accessChanged(override.guildId).flush(ctx.bus);
  return presentOverride(override.row);
}

export async function deleteOverride(ctx: Ctx, actor: Actor, channelId: string, roleId: string): Promise<void> {
  const guildId = await ctx.db.transaction(async (trx) => {
    const { channel, member, permissions } = await guildChannelOr404(trx as any, channelId, actor.userId);
    requirePermission(member, P.MANAGE_CHANNELS, permissions);
    const role = isId(roleId) ? await roleRepo.find(trx, channel.guild_id!, roleId) : undefined;
    if (!role) throw errors.notFound('No such role.');
    assertBelowActor(member, Number(role.position));
    if ((await channelRepo.deleteOverride(trx, channelId, roleId)) === 0) throw errors.notFound('No such override.');
    await recordActorAudit(trx, actor, 'channel.override_update', 'channel', channelId, {
      guild_id: channel.guild_id,
      role_id: roleId,
      removed: true,
    });
    return channel.guild_id!;
  });
  new Outbox().accessChanged(guildId).flush(ctx.bus);
}
