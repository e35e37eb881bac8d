/**
 * The first frame of every connection (and the answer to a failed resume): `ready` with the user, the
 * gateway session id, the heartbeat interval and everything the user may VIEW, sent in the same cork
 * as the subscriptions it reflects, so no event can arrive between the snapshot and the live stream.
 */
import { presentChannel } from '../channels/presenter.js';
import type { ReadyWire } from '../events/event-map.js';
import { presentGuild, presentRole } from '../guilds/presenter.js';
import { presentSelf } from '../users/presenter.js';
import type { Connection, ConnectionHost } from './connection.js';
import { CLOSE, eventFrame } from './protocol.js';
import type { UserView } from './repo.js';
import type { Subscriptions } from './subscriptions.js';

const byPosition = (a: { position: number }, b: { position: number }) => Number(a.position) - Number(b.position);

export function readyPayload(
  conn: Connection,
  view: UserView & { user: NonNullable<UserView['user']> },
  heartbeatMs: number,
  voiceStates: ReadyWire['voice_states'] = [],
): ReadyWire {
  return {
    user: presentSelf(view.user),
    session_id: conn.gatewaySessionId,
    heartbeat_interval_ms: heartbeatMs,
    guilds: view.guilds.map((g) => ({
      ...presentGuild(g.guild),
      channels: g.channels.sort(byPosition).map(presentChannel),
      roles: g.roles.sort(byPosition).map(presentRole),
      members_count: g.membersCount,
    })),
    dm_channels: view.dms.map((d) => ({ ...presentChannel(d.channel), recipient_ids: d.recipientIds })),
    voice_states: voiceStates,
  };
}

/** Loads the user's view, subscribes the socket to exactly it, then sends `ready`. */
export async function sendReady(
  deps: {
    subscriptions: Subscriptions;
    host: ConnectionHost;
    heartbeatMs: number;
    /** Who is in which of these voice channels (read in the same cork as the subscriptions). */
    voiceStates?: (channelIds: string[]) => ReadyWire['voice_states'];
  },
  conn: Connection,
  first: boolean,
): Promise<void> {
  const view = await deps.subscriptions.loadView(conn);
  if (!view) return;
  if (!view.user) {
    conn.end(CLOSE.SESSION_REVOKED, 'user no longer exists');
    return;
  }
  const user = view.user;
  conn.cork(() => {
    deps.subscriptions.subscribe(conn, view);
    const seq = deps.host.nextSeq();
    if (first) conn.readySeq = seq;
    const voiceChannels = view.guilds.flatMap((g) => g.channels.filter((c) => c.type === 'voice').map((c) => c.id));
    const voiceStates = deps.voiceStates?.(voiceChannels) ?? [];
    conn.sendFrame(eventFrame('ready', seq, readyPayload(conn, { ...view, user }, deps.heartbeatMs, voiceStates)));
  });
}
