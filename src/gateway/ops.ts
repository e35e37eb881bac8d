/**
 * Client ops → actions. One exhaustive switch (a new op in protocol.ts does not compile until it is
 * handled here); each handler authorises against the database, never against what the client says.
 * Handlers return the reply data (sent when the op carried a request_id) or throw an AppError.
 */

import { loadChannelAccess } from '../access/loaders.js';
import { has, P } from '../access/permissions.js';
import type { AppContext } from '../app/context.js';
import { errors } from '../errors.js';
import { iso, nowMs } from '../ids.js';
import { assertUnreachable, type ClientOp } from './protocol.js';

/** What an op may do to its own connection; implemented by the Gateway. */
export interface OpSession {
  readonly ctx: AppContext;
  readonly userId: string;
  /** Sends one event to this connection only. */
  sendEvent(type: string, data: unknown): void;
  /** Whether this connection currently receives `topic` (i.e. the user may VIEW it). */
  isSubscribed(topic: string): boolean;
  /** The guild ids this connection is subscribed to. */
  guildIds(): string[];
  resume(sessionId: string, seq: number): Promise<{ replayed: number }>;
}

export async function handleOp(s: OpSession, op: ClientOp): Promise<unknown> {
  switch (op.type) {
    case 'ping':
      s.sendEvent('pong', {});
      return {};
    case 'typing':
      return typing(s, op.data.channel_id);
    case 'presence': {
      const status = op.data.status === 'invisible' ? 'offline' : op.data.status;
      const out = s.ctx.events.outbox();
      for (const guildId of s.guildIds()) {
        out.toGuild(guildId, 'presence_update', { guild_id: guildId, user_id: s.userId, status });
      }
      out.flush();
      return { status };
    }
    case 'resume':
      return s.resume(op.data.session_id, op.data.seq);
    default:
      return assertUnreachable(op);
  }
}

async function typing(s: OpSession, channelId: string): Promise<unknown> {
  // A channel this connection does not receive is one the user may not VIEW: same answer as missing.
  if (!s.isSubscribed(`channel:${channelId}`)) throw errors.notFound('No such channel.');
  const access = await loadChannelAccess(s.ctx.db, channelId, s.userId);
  if (!access) throw errors.notFound('No such channel.');
  if (!has(access.permissions, P.SEND_MESSAGES)) throw errors.forbidden('You may not send messages here.');
  s.ctx.events
    .outbox()
    .toChannel(channelId, 'typing_start', {
      channel_id: channelId,
      guild_id: access.channel.guild_id,
      user_id: s.userId,
      timestamp: iso(nowMs()),
    })
    .flush();
  return {};
}
