/**
 * The event bus between features and transports. Features publish after their transaction commits;
 * the gateway delivers `dispatch` messages to uWS topics and reacts to the control messages. The local
 * bus delivers in-process; a Redis-backed bus (multi-node) delivers to every node, including this one.
 */

/** A gateway event for every connection subscribed to `topic` (`channel:<id>`, `guild:<id>`, `user:<id>`). */
export interface DispatchMessage {
  kind: 'dispatch';
  topic: string;
  type: string;
  data: unknown;
}

/** Sessions were revoked: drop cached auth, send `session_revoked`, close sockets with 4001. */
export interface SessionsRevokedMessage {
  kind: 'sessions_revoked';
  userId: string;
  /** Session (family) ids revoked, or 'all' for every session of the user. */
  sessionIds: string[] | 'all';
  /** With 'all': a session that survives (password change keeps the caller's own). */
  exceptSessionId?: string;
}

/** What a user may view changed (roles, overrides, membership, bans): recompute subscriptions. */
export interface AccessChangedMessage {
  kind: 'access_changed';
  guildId: string;
  /** Only these users, or everyone in the guild when absent. */
  userIds?: string[];
}

export type BusMessage = DispatchMessage | SessionsRevokedMessage | AccessChangedMessage;

export type BusHandler = (message: BusMessage) => void;

export interface EventBus {
  publish(message: BusMessage): void;
  subscribe(handler: BusHandler): () => void;
  close(): Promise<void>;
}

export class LocalEventBus implements EventBus {
  #handlers = new Set<BusHandler>();

  publish(message: BusMessage): void {
    for (const h of this.#handlers) h(message);
  }

  subscribe(handler: BusHandler): () => void {
    this.#handlers.add(handler);
    return () => this.#handlers.delete(handler);
  }

  async close(): Promise<void> {
    this.#handlers.clear();
  }
}
