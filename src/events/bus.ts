/**
 * The event bus between features and transports: what travels, and the in-process bus. Features never
 * touch it directly: they publish through an Outbox (typed by the EventMap, flushed after commit) and
 * subscribe through the EventHub (src/events/hub.ts). The gateway consumes it in order. The local bus
 * delivers in-process; the Redis bus (multi-node) delivers to every node, including this one. On both,
 * a throwing handler is logged and the others still run: a subscriber's bug must not turn a committed
 * write into a 500 or make another subscriber (the access cache) miss an invalidation.
 */
import type { Logger } from '../logger.js';

/**
 * A gateway event for every connection subscribed to `topic` (`channel:<id>`, `guild:<id>`, `user:<id>`).
 * Untyped here (it crosses Redis as JSON); the Outbox is where names and payloads are checked.
 */
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
export type BusKind = BusMessage['kind'];

export type BusHandler = (message: BusMessage) => void;

export interface EventBus {
  publish(message: BusMessage): void;
  subscribe(handler: BusHandler): () => void;
  close(): Promise<void>;
}

/** Runs every handler; one that throws is logged and does not stop the others. */
export function deliverToAll(handlers: Iterable<BusHandler>, message: BusMessage, logger: Logger): void {
  for (const h of handlers) {
    try {
      h(message);
    } catch (err) {
      logger.error({ err, kind: message.kind }, 'bus handler failed');
    }
  }
}

export class LocalEventBus implements EventBus {
  readonly #handlers = new Set<BusHandler>();
  readonly #logger: Logger;

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  publish(message: BusMessage): void {
    deliverToAll(this.#handlers, message, this.#logger);
  }

  subscribe(handler: BusHandler): () => void {
    this.#handlers.add(handler);
    return () => this.#handlers.delete(handler);
  }

  async close(): Promise<void> {
    this.#handlers.clear();
  }
}
