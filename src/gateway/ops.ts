/**
 * Client ops → actions, as one handler map typed over the op union (`OpHandlers<ClientOp>`): the
 * gateway's own ops are here; a feature's ops come from its module and are spread into HANDLERS, and
 * the compiler refuses a map that misses an op of the union. Every op is authorised against the
 * database, never against what the client says; a reply is sent when the op carried a request_id.
 */
import { loadChannelAccess } from '../access/loaders.js';
import { has, P } from '../access/permissions.js';
import type { AppContext } from '../context.js';
import { errors, toAppError } from '../errors.js';
import type { OpHandlers } from '../events/ops.js';
import { iso, nowMs } from '../ids.js';
import type { Connection } from './connection.js';
import type { Presence } from './presence.js';
import { type ClientOp, type CoreOp, errorReply, okReply } from './protocol.js';

export type GatewayOpDeps = Pick<AppContext, 'db' | 'events'> & {
  presence: Pick<Presence, 'chose'>;
  /** Replays a closed gateway session onto `conn` (resume.ts). */
  resume(conn: Connection, sessionId: string, seq: number): Promise<{ replayed: number }>;
};

/** The gateway's own ops: ping, typing, presence, resume. */
export function coreOpHandlers(deps: GatewayOpDeps): OpHandlers<CoreOp, Connection> {
  return {
    ping: (conn) => {
      conn.send('pong', {});
      return {};
    },
    typing: async (conn, { channel_id: channelId }) => {
      // A channel this connection does not receive is one the user may not VIEW: same answer as missing.
      if (!conn.isSubscribed(`channel:${channelId}`)) throw errors.notFound('No such channel.');
      const access = await loadChannelAccess(deps.db, channelId, conn.userId);
      if (!access) throw errors.notFound('No such channel.');
      if (!has(access.permissions, P.SEND_MESSAGES)) throw errors.forbidden('You may not send messages here.');
      deps.events
        .outbox()
        .toChannel(channelId, 'typing_start', {
          channel_id: channelId,
          guild_id: access.channel.guild_id,
          user_id: conn.userId,
          timestamp: iso(nowMs()),
        })
        .flush();
      return {};
    },
    presence: async (conn, { status: requested }) => {
      // Remembered cluster-wide: the next `ready` of anyone, and this user's reconnects, show it.
      await deps.presence.chose(conn.userId, requested);
      const status = requested === 'invisible' ? 'offline' : requested;
      const out = deps.events.outbox();
      for (const guildId of conn.guildIds()) {
        out.toGuild(guildId, 'presence_update', { guild_id: guildId, user_id: conn.userId, status });
      }
      out.flush();
      return { status };
    },
    resume: (conn, { session_id: sessionId, seq }) => deps.resume(conn, sessionId, seq),
  };
}

/** Runs parsed ops against one handler map and answers them. */
export class OpDispatcher {
  readonly #handlers: OpHandlers<ClientOp, Connection>;
  readonly #logger: AppContext['logger'];

  constructor(handlers: OpHandlers<ClientOp, Connection>, logger: AppContext['logger']) {
    this.#handlers = handlers;
    this.#logger = logger;
  }

  async run(conn: Connection, op: ClientOp): Promise<void> {
    if (conn.closed) return;
    const handle = this.#handlers[op.type] as (conn: Connection, data: unknown) => unknown;
    try {
      const data = await handle(conn, op.data);
      if (op.request_id && !conn.closed) {
        const reply = okReply(op.request_id, data);
        conn.cork(() => conn.sendFrame(reply));
      }
    } catch (e) {
      const err = toAppError(e, this.#logger, { op: op.type });
      if (!conn.closed) conn.cork(() => conn.sendFrame(errorReply(op.request_id ?? null, err)));
    }
  }
}
