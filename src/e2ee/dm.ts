/**
 * DM channels: open (1 recipient = a 1:1 DM, always the same channel for the same pair; 2–9 = a group
 * DM), list, leave. Opening one needs a shared guild with every recipient unless the caller is an
 * admin (no cold DMs to strangers); an unknown and an unrelated user both answer 404. Participation is
 * the access rule (src/access/loaders.ts); leaving a group DM rotates its Megolm sessions.
 */
import { channelOr404, guildPeers } from '../access/loaders.js';
import type { Actor } from '../actor.js';
import { recordActorAudit } from '../audit/writer.js';
import { presentChannel } from '../channels/presenter.js';
import { isUniqueViolation } from '../db/errors.js';
import type { Db } from '../db/knex.js';
import { errors } from '../errors.js';
import type { ChannelWire } from '../events/event-map.js';
import type { EventHub } from '../events/hub.js';
import { newId, nowMs } from '../ids.js';
import type { RateLimits } from '../ratelimit/index.js';
import { expireChannelSessions } from './megolm.js';
import { type DmChannelRow, dmRepo } from './repo.js';
import type { DmCreate } from './schema.js';

export interface DmDeps {
  db: Db;
  events: EventHub;
  limits: RateLimits;
}

export type DmWire = ChannelWire & { recipient_ids: string[] };

const isDmType = (type: string) => type === 'dm' || type === 'group_dm';
const pairKey = (a: string, b: string) => (a < b ? `${a}:${b}` : `${b}:${a}`);

export const presentDm = (channel: DmChannelRow, participantIds: string[], viewerId: string): DmWire => ({
  ...presentChannel(channel),
  recipient_ids: participantIds.filter((u) => u !== viewerId).sort(),
});

/** Opens a DM; `created` is false when the 1:1 pair already had its channel (200 instead of 201). */
export async function openDm(ctx: DmDeps, actor: Actor, input: DmCreate): Promise<{ dm: DmWire; created: boolean }> {
  const recipients = [...new Set(input.recipient_ids)];
  if (recipients.includes(actor.userId)) {
    throw errors.validation('You cannot open a DM with yourself.', [
      { path: 'recipient_ids', message: 'must not include the caller' },
    ]);
  }
  await ctx.limits.consume('dm_create_user', actor.userId);
  const attempt = () =>
    ctx.db.transaction(async (trx) => {
      const users = await dmRepo.users(trx, [actor.userId, ...recipients]);
      const me = users.find((u) => u.id === actor.userId);
      const found = users.filter((u) => u.id !== actor.userId && !u.disabled_at);
      if (!me || found.length !== recipients.length) throw errors.notFound('No such user.');
      if (!me.is_admin) {
        const peers = await guildPeers(trx, actor.userId, recipients);
        if (recipients.some((r) => !peers.has(r))) throw errors.notFound('No such user.');
      }
      const now = nowMs();
      const participants = [actor.userId, ...recipients];
      if (recipients.length === 1) {
        const key = pairKey(actor.userId, recipients[0] as string);
        await dmRepo.lockPair(trx, key);
        const existing = await dmRepo.byKey(trx, key);
        if (existing) {
          await dmRepo.join(trx, existing.id, participants, now);
          return { channel: existing, participants, created: false };
        }
      }
      const channel: DmChannelRow = {
        id: newId(),
        guild_id: null,
        type: recipients.length === 1 ? 'dm' : 'group_dm',
        name: null,
        topic: null,
        position: 0,
        user_limit: null,
        created_at: now,
        updated_at: now,
        dm_key: recipients.length === 1 ? pairKey(actor.userId, recipients[0] as string) : null,
        owner_id: actor.userId,
      };
      await dmRepo.insertChannel(trx, channel);
      await dmRepo.join(trx, channel.id, participants, now);
      await recordActorAudit(trx, actor, 'dm.create', 'channel', channel.id, {
        type: channel.type,
        participant_count: participants.length,
      });
      return { channel, participants, created: true };
    });
  let result: Awaited<ReturnType<typeof attempt>>;
  try {
    result = await attempt();
  } catch (e) {
    // Two requests raced to open the same pair: the loser finds the winner's channel.
    if (!isUniqueViolation(e)) throw e;
    result = await attempt();
  }
  const dm = presentDm(result.channel, result.participants, actor.userId);
  // Subscriptions first (the bus consumer recomputes before the dispatch behind it), then the event.
  ctx.events
    .outbox()
    .dmAccessChanged(result.participants)
    .toChannel(dm.id, 'channel_create', {
      ...presentChannel(result.channel),
      recipient_ids: dm.recipient_ids,
    } as DmWire)
    .flush();
  return { dm, created: result.created };
}

export async function listDms(ctx: DmDeps, actor: Actor): Promise<DmWire[]> {
  const channels = await dmRepo.channelsOf(ctx.db, actor.userId);
  const participants = await dmRepo.participants(
    ctx.db,
    channels.map((c) => c.id),
  );
  return channels.map((c) =>
    presentDm(
      c,
      participants.filter((p) => p.channel_id === c.id).map((p) => p.user_id),
      actor.userId,
    ),
  );
}

/**
 * Leaves a DM. In a group DM the stored Megolm sessions expire and the remaining participants get
 * `megolm_session_rotation`, so their next outbound session is one the leaver never held.
 */
export async function leaveDm(ctx: DmDeps, actor: Actor, channelId: string): Promise<void> {
  let rotate = false;
  await ctx.db.transaction(async (trx) => {
    const access = await channelOr404(trx, channelId, actor.userId);
    if (!isDmType(access.channel.type)) throw errors.notFound('No such channel.');
    await dmRepo.leave(trx, channelId, actor.userId, nowMs());
    const expired = await expireChannelSessions(trx, [channelId]);
    rotate = access.channel.type === 'group_dm' || expired.length > 0;
  });
  const out = ctx.events.outbox().dmAccessChanged([actor.userId]);
  if (rotate) out.toChannel(channelId, 'megolm_session_rotation', { channel_id: channelId });
  out.flush();
}
