/**
 * The voice signalling ops over the gateway (DESIGN.md §8): authorise each op against the database
 * (the access kernel), apply the join rate limit, then call the voice service with the acting user.
 *
 * A voice session belongs to the connection that joined: its per-connection state object is the
 * session's holder in the service, so ops from the user's other sockets answer NOT_FOUND ("not in a
 * voice channel" from there), and closing that socket leaves voice (the close hook). Joining from
 * another socket moves the session there. Joins, leaves and server mutes are audited (leaves by the
 * events bridge in signalling.ts, which sees every way out).
 */
import { loadChannelAccess } from '../access/loaders.js';
import { has, P } from '../access/permissions.js';
import type { ChannelRow } from '../access/repo.js';
import { recordActorAudit } from '../audit/writer.js';
import type { Db } from '../db/knex.js';
import { errors } from '../errors.js';
import { type ClientConnection, connectionSlot } from '../events/connection.js';
import type { OpHandlers } from '../events/ops.js';
import { isId } from '../ids.js';
import type { Logger } from '../logger.js';
import type { RateLimits } from '../ratelimit/index.js';
import type { VoiceOp } from './schema.js';
import type { VoiceService } from './VoiceService.js';

export interface VoiceOpDeps {
  db: Db;
  limits: RateLimits;
  logger: Logger;
  voice: VoiceService;
}

/** This connection's voice session marker (its identity is what the service keeps as the holder). */
export interface VoiceConnState {
  hooked: boolean;
  /** The connection itself, for telling it of a removal it can no longer see on the channel's topic. */
  conn: ClientConnection | undefined;
}
export const VOICE_SLOT = connectionSlot<VoiceConnState>('voice', () => ({ hooked: false, conn: undefined }));

/** A voice channel row with the column added for issue 15 (SQLite returns booleans as 0/1). */
type VoiceChannelRow = ChannelRow & { e2ee_voice?: boolean | number | null };

const notInVoice = () => errors.notFound('You are not in a voice channel.');

export function voiceOpHandlers(deps: VoiceOpDeps): OpHandlers<VoiceOp> {
  const { voice } = deps;

  /** The caller's own voice session on this connection, or NOT_FOUND. */
  const mine = (conn: ClientConnection): string => {
    const state = conn.state(VOICE_SLOT);
    if (voice.ownerOf(conn.userId) !== state) {
      // Not in voice at all: say VOICE_UNAVAILABLE when that is why.
      if (!voice.status.available) throw errors.voiceUnavailable();
      throw notInVoice();
    }
    return conn.userId;
  };

  return {
    voice_join: async (conn, { channel_id: channelId, e2ee }) => {
      if (!voice.status.available) throw errors.voiceUnavailable();
      await deps.limits.consume('voice_join_second', conn.userId);
      await deps.limits.consume('voice_join_minute', conn.userId);
      const access = isId(channelId) ? await loadChannelAccess(deps.db, channelId, conn.userId) : undefined;
      if (!access) throw errors.notFound('No such channel.');
      const channel = access.channel as VoiceChannelRow;
      if (channel.type !== 'voice') {
        throw errors.validation('That is not a voice channel.', [
          { path: 'channel_id', message: 'not a voice channel' },
        ]);
      }
      if (!has(access.permissions, P.VOICE_CONNECT))
        throw errors.forbidden('You may not connect to this voice channel.');
      if (channel.e2ee_voice && e2ee !== true) throw errors.e2eeRequired();

      const state = conn.state(VOICE_SLOT);
      state.conn = conn;
      const reply = await voice.join(conn.userId, channelId, {
        userLimit: channel.user_limit,
        owner: state,
        guildId: channel.guild_id,
        e2ee: e2ee === true,
      });
      const session = { channelId, owner: state };
      try {
        // Access may have changed while the room opened (kick, ban, override): the access_changed for it
        // may have been handled before this peer existed, so look once more now that it does.
        const again = await loadChannelAccess(deps.db, channelId, conn.userId);
        if (!again || !has(again.permissions, P.VOICE_CONNECT)) throw errors.notFound('No such channel.');
        await recordActorAudit(
          deps.db,
          { userId: conn.userId, ip: conn.ip ?? null },
          'voice.join',
          'channel',
          channelId,
          {
            guild_id: channel.guild_id,
            e2ee: e2ee === true,
          },
        );
      } catch (err) {
        voice.closePeerIf(conn.userId, session, 'removed');
        throw err;
      }
      if (conn.closed) {
        voice.closePeerIf(conn.userId, session, 'disconnected');
        throw notInVoice();
      }
      if (!state.hooked) {
        state.hooked = true;
        conn.onClose(() => {
          const current = voice.members().find((m) => m.userId === conn.userId && m.owner === state);
          if (current) voice.closePeerIf(conn.userId, { channelId: current.channelId, owner: state }, 'disconnected');
        });
      }
      return reply;
    },

    voice_create_transport: (conn, { direction }) => voice.createTransport(mine(conn), direction),

    voice_connect_transport: async (conn, { transport_id, dtls_parameters }) => {
      await voice.connectTransport(mine(conn), transport_id, dtls_parameters as never);
      return {};
    },

    voice_produce: async (conn, { transport_id, kind, rtp_parameters }) => {
      const userId = mine(conn);
      const channelId = voice.channelOf(userId);
      const access = channelId ? await loadChannelAccess(deps.db, channelId, userId) : undefined;
      if (!access || !has(access.permissions, P.VOICE_CONNECT)) throw notInVoice();
      if (!has(access.permissions, P.VOICE_SPEAK)) throw errors.forbidden('You may not speak in this voice channel.');
      return voice.produce(userId, transport_id, kind, rtp_parameters as never);
    },

    voice_consume: (conn, { producer_id, rtp_capabilities }) =>
      voice.consume(mine(conn), producer_id, rtp_capabilities as never),

    voice_resume_consumer: async (conn, { consumer_id }) => {
      await voice.resumeConsumer(mine(conn), consumer_id);
      return {};
    },

    voice_mute: async (conn) => {
      await voice.setMuted(mine(conn), true);
      return {};
    },
    voice_unmute: async (conn) => {
      await voice.setMuted(mine(conn), false);
      return {};
    },
    voice_deafen: async (conn) => {
      await voice.setDeafened(mine(conn), true);
      return {};
    },
    voice_undeafen: async (conn) => {
      await voice.setDeafened(mine(conn), false);
      return {};
    },

    voice_server_mute: async (conn, { user_id: targetId, muted }) => {
      if (!voice.status.available) throw errors.voiceUnavailable();
      // The target must be in a voice channel the caller may VIEW; otherwise it looks like nobody is there.
      const channelId = voice.channelOf(targetId);
      const access = channelId ? await loadChannelAccess(deps.db, channelId, conn.userId) : undefined;
      if (!channelId || !access) throw errors.notFound('That user is not in a voice channel you can see.');
      if (!has(access.permissions, P.VOICE_MUTE_OTHERS)) throw errors.forbidden('You may not mute others here.');
      await voice.setServerMuted(targetId, muted);
      await recordActorAudit(
        deps.db,
        { userId: conn.userId, ip: conn.ip ?? null },
        'voice.server_mute',
        'user',
        targetId,
        { channel_id: channelId, guild_id: access.channel.guild_id, muted },
      );
      return {};
    },

    voice_leave: (conn) => {
      const state = conn.state(VOICE_SLOT);
      const channelId = voice.ownerOf(conn.userId) === state ? voice.channelOf(conn.userId) : undefined;
      if (!channelId) throw notInVoice();
      voice.closePeerIf(conn.userId, { channelId, owner: state }, 'left');
      return {};
    },
  };
}
