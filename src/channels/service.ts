/**
 * Channel verbs: list the channels a member may view, create, read, update, delete, and per-role
 * overrides. A channel the caller cannot VIEW is 404 (no existence leak); one they can view but not
 * manage is 403. Channel-level MANAGE_CHANNELS (after overrides) is what counts.
 */
import { type ChannelAccess, channelOr404, memberOr404, roleOr404, visibleGuildChannels } from '../access/loaders.js';
import { P, toWire } from '../access/permissions.js';
import { assertBelowActor, assertEveryoneAllowed, assertGrantable, requirePermission } from '../access/policy.js';
import type { ChannelRow } from '../access/repo.js';
import type { Actor } from '../actor.js';
import { recordActorAudit } from '../audit/writer.js';
import type { Config } from '../config/index.js';
import type { Db, Queryable } from '../db/knex.js';
import { errors } from '../errors.js';
import type { EventHub } from '../events/hub.js';
import { newId, nowMs } from '../ids.js';
import type { Logger } from '../logger.js';
import { attachmentRepo } from '../uploads/repo.js';
import { removeStoredFiles } from '../uploads/storage.js';
import { presentChannel, presentOverride } from './presenter.js';
import { channelRepo } from './repo.js';
import type { ChannelCreate, ChannelUpdate, OverrideBody } from './schema.js';

export interface ChannelDeps {
  db: Db;
  events: EventHub;
  config: Pick<Config, 'dataDir'>;
  logger: Logger;
}

type GuildChannelAccess = ChannelAccess & {
  member: NonNullable<ChannelAccess['member']>;
  channel: { guild_id: string };
};

/** A guild channel the caller may view (DM channels are managed by the DM feature). */
async function guildChannelOr404(q: Queryable, channelId: string, userId: string): Promise<GuildChannelAccess> {
  const access = await channelOr404(q, channelId, userId);
  if (!access.member || !access.channel.guild_id) throw errors.notFound('No such channel.');
  return access as GuildChannelAccess;
}

const voiceOnly = (field: 'user_limit' | 'e2ee_voice' = 'user_limit') =>
  errors.validation(
    field === 'user_limit'
      ? 'Only voice channels have a user limit.'
      : 'Only voice channels have end-to-end encrypted voice.',
    [{ path: field, message: 'voice only' }],
  );

/** The default channels of a new guild (#general and the General voice channel). */
export function defaultChannels(guildId: string, now: number): ChannelRow[] {
  const channel = (name: string, type: 'text' | 'voice', position: number): ChannelRow => ({
    id: newId(),
    guild_id: guildId,
    type,
    name,
    topic: null,
    position,
    user_limit: null,
    created_at: now,
    updated_at: now,
  });
  return [channel('general', 'text', 0), channel('General', 'voice', 1)];
}

export async function listChannels(deps: ChannelDeps, actor: Actor, guildId: string) {
  const me = await memberOr404(deps.db, guildId, actor.userId);
  return (await visibleGuildChannels(deps.db, me)).map(presentChannel);
}

export async function createChannel(deps: ChannelDeps, actor: Actor, guildId: string, input: ChannelCreate) {
  const me = await memberOr404(deps.db, guildId, actor.userId);
  requirePermission(me, P.MANAGE_CHANNELS);
  if (input.type === 'text' && input.user_limit != null) throw voiceOnly();
  if (input.type === 'text' && input.e2ee_voice) throw voiceOnly('e2ee_voice');
  const now = nowMs();
  const row: ChannelRow = {
    id: newId(),
    guild_id: guildId,
    type: input.type,
    name: input.name,
    topic: input.topic ?? null,
    position: input.position ?? (await channelRepo.countInGuild(deps.db, guildId)),
    user_limit: input.user_limit ?? null,
    e2ee_voice: input.e2ee_voice ?? false,
    created_at: now,
    updated_at: now,
  };
  await channelRepo.insert(deps.db, row);
  const wire = presentChannel(row);
  deps.events.outbox().channelCreated(guildId, wire).flush();
  return wire;
}

export async function getChannel(deps: ChannelDeps, actor: Actor, channelId: string) {
  return presentChannel((await channelOr404(deps.db, channelId, actor.userId)).channel);
}

export async function updateChannel(deps: ChannelDeps, actor: Actor, channelId: string, input: ChannelUpdate) {
  const { channel, member, permissions } = await guildChannelOr404(deps.db, channelId, actor.userId);
  requirePermission(member, P.MANAGE_CHANNELS, permissions);
  if (input.user_limit != null && channel.type !== 'voice') throw voiceOnly();
  if (input.e2ee_voice && channel.type !== 'voice') throw voiceOnly('e2ee_voice');
  const patch: Partial<ChannelRow> = { updated_at: nowMs() };
  if (input.name !== undefined) patch.name = input.name;
  if (input.topic !== undefined) patch.topic = input.topic;
  if (input.position !== undefined) patch.position = input.position;
  if (input.user_limit !== undefined) patch.user_limit = input.user_limit;
  const e2eeChange = input.e2ee_voice !== undefined && input.e2ee_voice !== Boolean(channel.e2ee_voice);
  if (input.e2ee_voice !== undefined) patch.e2ee_voice = input.e2ee_voice;
  await deps.db.transaction(async (trx) => {
    await channelRepo.update(trx, channelId, patch);
    // Turning end-to-end encrypted voice off lets the server hear a channel: a security event.
    if (e2eeChange) {
      await recordActorAudit(trx, actor, 'channel.e2ee_voice', 'channel', channelId, {
        guild_id: channel.guild_id,
        enabled: input.e2ee_voice,
      });
    }
  });
  const wire = presentChannel((await channelRepo.find(deps.db, channelId)) as ChannelRow);
  deps.events.outbox().channelUpdated(channel.guild_id, wire).flush();
  return wire;
}

export async function deleteChannel(deps: ChannelDeps, actor: Actor, channelId: string): Promise<void> {
  const { channel, member, permissions } = await guildChannelOr404(deps.db, channelId, actor.userId);
  requirePermission(member, P.MANAGE_CHANNELS, permissions);
  const files = await deps.db.transaction(async (trx) => {
    const files = await attachmentRepo.filesOfChannel(trx, channelId);
    await channelRepo.delete(trx, channelId);
    return files;
  });
  deps.events.outbox().channelDeleted(channel.guild_id, channelId).flush();
  await removeStoredFiles(deps.config.dataDir, files, deps.logger);
}

export async function setOverride(
  deps: ChannelDeps,
  actor: Actor,
  channelId: string,
  roleId: string,
  input: OverrideBody,
) {
  const override = await deps.db.transaction(async (trx) => {
    const { channel, member, permissions } = await guildChannelOr404(trx, channelId, actor.userId);
    requirePermission(member, P.MANAGE_CHANNELS, permissions);
    const role = await roleOr404(trx, channel.guild_id, roleId);
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
    return { row, guildId: channel.guild_id };
  });
  deps.events.outbox().accessChanged(override.guildId).flush();
  return presentOverride(override.row);
}

export async function deleteOverride(deps: ChannelDeps, actor: Actor, channelId: string, roleId: string) {
  const guildId = await deps.db.transaction(async (trx) => {
    const { channel, member, permissions } = await guildChannelOr404(trx, channelId, actor.userId);
    requirePermission(member, P.MANAGE_CHANNELS, permissions);
    const role = await roleOr404(trx, channel.guild_id, roleId);
    assertBelowActor(member, Number(role.position));
    if ((await channelRepo.deleteOverride(trx, channelId, roleId)) === 0) throw errors.notFound('No such override.');
    await recordActorAudit(trx, actor, 'channel.override_update', 'channel', channelId, {
      guild_id: channel.guild_id,
      role_id: roleId,
      removed: true,
    });
    return channel.guild_id;
  });
  deps.events.outbox().accessChanged(guildId).flush();
}
