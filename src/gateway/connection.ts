/**
 * One gateway connection (referenced by its socket's user data) and the `ClientConnection` features see.
 * Holds who it is (user, auth session, gateway session), its counters for flow control, the features'
 * per-connection state and their close hooks. Kept small: 10,000 idle connections must fit in
 * 150 MB, so feature state and hooks are allocated only when used.
 */
import type { ClientConnection, ConnectionSlot } from '../events/connection.js';
import type { EventMap, EventName, Topic } from '../events/event-map.js';
import type { Logger } from '../logger.js';
import type { WebSocket } from '../net/uws.js';
import { eventFrame } from './protocol.js';

/**
 * The uWS user data of a socket. uWS.js copies the own properties of the object given to `upgrade`
 * onto the socket itself (no prototype, no private fields), so the socket carries one reference.
 */
export interface SocketData {
  conn: Connection;
}
export type Socket = WebSocket<SocketData>;

/** What a connection needs from the gateway. */
export interface ConnectionHost {
  /** The next number of the node's event sequence. */
  nextSeq(): number;
  /** Writes one serialised frame to the socket, under flow control. */
  sendFrame(conn: Connection, frame: string): void;
  /** Ends the socket with a close code (idempotent). */
  end(conn: Connection, code: number, reason: string): void;
  readonly logger: Logger;
}

export class Connection implements ClientConnection {
  readonly userId: string;
  readonly authSessionId: string;
  readonly ip: string | undefined;
  /** The gateway session id (for `resume`). */
  readonly gatewaySessionId: string;
  /** When its token and session were checked (a revocation after that, before open, closes it). */
  readonly authAt: number;
  /** Seq of this connection's first `ready`: node events up to it were not delivered live here. */
  readySeq = 0;
  /** The first `ready` being prepared; ops wait for it. */
  init: Promise<void> | undefined;
  opsWindowStart: number;
  ops = 0;
  malformed = 0;
  #closed = false;
  #corked = false;
  #ws: Socket | undefined;
  readonly #host: ConnectionHost;
  #state: Map<ConnectionSlot<unknown>, unknown> | undefined;
  #closeHooks: (() => void)[] | undefined;

  constructor(
    host: ConnectionHost,
    who: { userId: string; authSessionId: string; gatewaySessionId: string; authAt: number; ip?: string },
  ) {
    this.#host = host;
    this.userId = who.userId;
    this.authSessionId = who.authSessionId;
    this.ip = who.ip;
    this.gatewaySessionId = who.gatewaySessionId;
    this.authAt = who.authAt;
    this.opsWindowStart = who.authAt;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The socket, once open (uWS calls `open` with the socket this connection is the user data of). */
  get ws(): Socket {
    return this.#ws as Socket;
  }

  attach(ws: Socket): void {
    this.#ws = ws;
  }

  send<K extends EventName>(type: K, data: EventMap[K]): void {
    this.sendEvent(type, data);
  }

  /** Sends an event by name (the bus carries names as text); prefer `send`. */
  sendEvent(type: string, data: unknown): void {
    if (this.#closed) return;
    this.cork(() => this.#host.sendFrame(this, eventFrame(type, this.#host.nextSeq(), data)));
  }

  /** Batches the writes of `fn` into one syscall (nested calls join the outer batch). */
  cork(fn: () => void): void {
    if (this.#corked || !this.#ws || this.#closed) {
      fn();
      return;
    }
    this.#corked = true;
    try {
      this.#ws.cork(fn);
    } finally {
      this.#corked = false;
    }
  }

  /** Sends an already serialised frame (replies, replayed events). */
  sendFrame(frame: string): void {
    if (!this.#closed) this.#host.sendFrame(this, frame);
  }

  isSubscribed(topic: Topic | string): boolean {
    return !this.#closed && this.#ws !== undefined && this.#ws.isSubscribed(topic);
  }

  /** The topics the socket is subscribed to. */
  topics(): string[] {
    return this.#closed || !this.#ws ? [] : this.#ws.getTopics();
  }

  guildIds(): string[] {
    return this.topics()
      .filter((t) => t.startsWith('guild:'))
      .map((t) => t.slice(6));
  }

  state<T>(slot: ConnectionSlot<T>): T {
    this.#state ??= new Map();
    if (!this.#state.has(slot)) this.#state.set(slot, slot.create());
    return this.#state.get(slot) as T;
  }

  onClose(hook: () => void): void {
    if (this.#closed) {
      this.#runHook(hook);
      return;
    }
    this.#closeHooks ??= [];
    this.#closeHooks.push(hook);
  }

  /** Ends the socket with a close code; the close hooks run. */
  end(code: number, reason: string): void {
    this.#host.end(this, code, reason);
  }

  /** Marks the connection closed and runs its hooks; false when it already was (idempotent). */
  markClosed(): boolean {
    if (this.#closed) return false;
    this.#closed = true;
    const hooks = this.#closeHooks ?? [];
    this.#closeHooks = undefined;
    for (const hook of hooks) this.#runHook(hook);
    this.#state = undefined;
    return true;
  }

  #runHook(hook: () => void): void {
    try {
      hook();
    } catch (err) {
      this.#host.logger.error({ err, userId: this.userId }, 'connection close hook failed');
    }
  }
}
