/**
 * What a feature may do with one client connection (a gateway socket), without importing the gateway:
 * send it a typed event, ask what it receives, keep its own per-connection state, and clean up when it
 * closes. The gateway implements this (src/gateway/connection.ts); voice keeps its transports here and
 * releases them in an `onClose` hook.
 */
import type { EventMap, EventName, Topic } from './event-map.js';

/** A named piece of per-connection state, created on first use by `create`. Define one per feature. */
export interface ConnectionSlot<T> {
  readonly name: string;
  readonly create: () => T;
}

export const connectionSlot = <T>(name: string, create: () => T): ConnectionSlot<T> => ({ name, create });

export interface ClientConnection {
  readonly userId: string;
  /** The auth session (JWT `sid`) the socket was opened with. */
  readonly authSessionId: string;
  /** The client's address as the upgrade saw it (for audit rows). */
  readonly ip?: string | undefined;
  readonly closed: boolean;
  /** Sends one event to this connection only (numbered from the node's event sequence). */
  send<K extends EventName>(type: K, data: EventMap[K]): void;
  /** Whether this connection currently receives `topic` (for a channel: the user may VIEW it). */
  isSubscribed(topic: Topic): boolean;
  /** The guild ids this connection is subscribed to. */
  guildIds(): string[];
  /** This connection's state for `slot` (created on first use; gone when the connection closes). */
  state<T>(slot: ConnectionSlot<T>): T;
  /**
   * Runs `hook` once when the connection closes, whatever the reason (client, idle timeout, revoked
   * session, slow consumer, shutdown). Runs at once if it is already closed. A throwing hook is logged.
   */
  onClose(hook: () => void): void;
}
