/**
 * The voice service's side of the realtime kernel, built once per app (createApp) and detached by
 * its `stop()`:
 * - what happens in rooms becomes voice_* events on the voice channel's topic (DESIGN.md §8), so only
 *   those who may VIEW the channel receive them;
 * - every way out of voice (leave, move, socket closed, removal, worker death, shutdown) is audited as
 *   `voice.leave` with its reason;
 * - `access_changed` re-checks the users in voice in that guild: losing VIEW_CHANNEL or VOICE_CONNECT
 *   (roles, overrides, kick, ban, channel deleted) removes them at once and closes their transports;
 *   losing VOICE_SPEAK closes their producers; a channel switched to `e2ee_voice` removes those who did
 *   not join with end-to-end encryption.
 */
import { loadChannelAccess } from '../access/loaders.js';
import { has, P } from '../access/permissions.js';
import { recordAudit } from '../audit/writer.js';
import type { Db } from '../db/knex.js';
import type { AccessChangedMessage } from '../events/bus.js';
import type { EventHub } from '../events/hub.js';
import type { Logger } from '../logger.js';
import type { VoiceConnState } from './ops.js';
import type { VoiceService } from './VoiceService.js';

export interface VoiceSignallingDeps {
  db: Db;
  events: EventHub;
  logger: Logger;
  voice: VoiceService;
}

export interface VoiceSignalling {
  /** Stops listening and waits for the audit rows still being written. */
  detach(): Promise<void>;
}

export function attachVoiceSignalling(deps: VoiceSignallingDeps): VoiceSignalling {
  const { voice, events, logger } = deps;
  const pending = new Set<Promise<unknown>>();
  const track = (p: Promise<unknown>) => {
    const t = p.catch((err) => logger.error({ err }, 'voice bookkeeping failed')).finally(() => pending.delete(t));
    pending.add(t);
  };

  const onJoined: Parameters<typeof voice.on<'user-joined'>>[1] = ({ channelId, state }) =>
    events
      .outbox()
      .toChannel(channelId, 'voice_user_joined', { channel_id: channelId, ...state })
      .flush();
  const onLeft: Parameters<typeof voice.on<'user-left'>>[1] = ({ channelId, userId, reason }) => {
    events.outbox().toChannel(channelId, 'voice_user_left', { channel_id: channelId, user_id: userId, reason }).flush();
    track(
      recordAudit(deps.db, {
        action: 'voice.leave',
        userId,
        resourceType: 'channel',
        resourceId: channelId,
        metadata: { reason },
      }),
    );
  };
  const onState: Parameters<typeof voice.on<'state-update'>>[1] = ({ channelId, state }) =>
    events
      .outbox()
      .toChannel(channelId, 'voice_state_update', { channel_id: channelId, ...state })
      .flush();
  const onProducer: Parameters<typeof voice.on<'new-producer'>>[1] = ({ channelId, userId, producerId }) =>
    events
      .outbox()
      .toChannel(channelId, 'voice_new_producer', { channel_id: channelId, user_id: userId, producer_id: producerId })
      .flush();
  const onProducerClosed: Parameters<typeof voice.on<'producer-closed'>>[1] = ({ channelId, userId, producerId }) =>
    events
      .outbox()
      .toChannel(channelId, 'voice_producer_closed', {
        channel_id: channelId,
        user_id: userId,
        producer_id: producerId,
      })
      .flush();

  voice.on('user-joined', onJoined);
  voice.on('user-left', onLeft);
  voice.on('state-update', onState);
  voice.on('new-producer', onProducer);
  voice.on('producer-closed', onProducerClosed);

  const recheck = async (m: AccessChangedMessage) => {
    const only = m.userIds ? new Set(m.userIds) : undefined;
    const affected = voice.members().filter((v) => v.guildId === m.guildId && (!only || only.has(v.userId)));
    for (const member of affected) {
      const access = await loadChannelAccess(deps.db, member.channelId, member.userId);
      const channel = access?.channel as { e2ee_voice?: unknown } | undefined;
      const session = { channelId: member.channelId, owner: member.owner };
      if (!access || !has(access.permissions, P.VOICE_CONNECT) || (Boolean(channel?.e2ee_voice) && !member.e2ee)) {
        if (voice.closePeerIf(member.userId, session, 'removed')) {
          logger.info({ user_id: member.userId, channel_id: member.channelId }, 'removed from voice: access lost');
          // Someone who may no longer see the channel will not get the topic event (the gateway drops
          // their subscription before delivering anything published after the access change): tell
          // their socket directly. Those who still see it get the topic event like everyone else.
          const conn = (member.owner as VoiceConnState | undefined)?.conn;
          if (!access && conn && !conn.closed) {
            conn.send('voice_user_left', { channel_id: member.channelId, user_id: member.userId, reason: 'removed' });
          }
        }
      } else if (!has(access.permissions, P.VOICE_SPEAK) && voice.ownerOf(member.userId) === member.owner) {
        voice.closeProducers(member.userId);
      }
    }
  };
  const unsubscribe = events.on('access_changed', (m) => {
    if (voice.members().length > 0) track(recheck(m));
  });

  return {
    async detach() {
      unsubscribe();
      while (pending.size > 0) await Promise.all([...pending]);
      voice.off('user-joined', onJoined);
      voice.off('user-left', onLeft);
      voice.off('state-update', onState);
      voice.off('new-producer', onProducer);
      voice.off('producer-closed', onProducerClosed);
    },
  };
}
