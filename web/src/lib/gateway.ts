/**
 * The gateway connection (`/ws`, DESIGN.md §7): token in the subprotocol, heartbeat, reconnect with
 * jittered exponential backoff, and `resume` of the previous session on the new socket. The state
 * (`connecting` → `ready` ⇄ `reconnecting`) is a signal the UI shows. What the events mean is the
 * store's business: this only delivers them, with `onReady(ready, reconnected)` after every (re)connect
 * so the store can reconcile with history.
 */
import { signal } from '@preact/signals';
import { accessExpiresInMs, accessToken, refreshTokens } from './session';
import type { GatewayEvent, Ready } from './types';

export type ConnectionState = 'idle' | 'connecting' | 'ready' | 'reconnecting';

export interface GatewayHandlers {
  onReady(ready: Ready, reconnected: boolean): void;
  onEvent(event: GatewayEvent): void;
  /** The server revoked this session (close 4001). */
  onRevoked(): void;
}

export class GatewayClient {
  readonly state = signal<ConnectionState>('idle');
  #ws: WebSocket | undefined;
  #handlers: GatewayHandlers;
  #sessionId: string | undefined;
  #lastSeq = 0;
  #everReady = false;
  #attempt = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #awaitingPong = false;
  #running = false;
  #nextRequest = 1;
  #pending = new Map<string, { resolve: (d: any) => void; reject: (e: Error) => void }>();

  constructor(handlers: GatewayHandlers) {
    this.#handlers = handlers;
    addEventListener('online', () => {
      if (this.#running && this.state.value === 'reconnecting') this.#connectNow();
    });
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#attempt = 0;
    this.state.value = 'connecting';
    void this.#connect();
  }

  stop(): void {
    this.#running = false;
    this.#sessionId = undefined;
    this.#lastSeq = 0;
    this.#everReady = false;
    clearTimeout(this.#timer);
    this.#clearSocket();
    this.state.value = 'idle';
  }

  /** Closes the socket as a network drop would (tests and the reconnect logic share the path). */
  drop(): void {
    this.#ws?.close(4000, 'client drop');
  }

  /** Sends an op; with `reply` it resolves with the reply's data or rejects with its error. */
  send(type: string, data: Record<string, unknown>, reply = false): Promise<any> {
    const ws = this.#ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return Promise.reject(new Error('not connected'));
    if (!reply) {
      ws.send(JSON.stringify({ type, data }));
      return Promise.resolve(undefined);
    }
    const request_id = `r${this.#nextRequest++}`;
    ws.send(JSON.stringify({ type, request_id, data }));
    return new Promise((resolve, reject) => this.#pending.set(request_id, { resolve, reject }));
  }

  async #connect(): Promise<void> {
    if (!this.#running) return;
    // An expired or revoked token is refused at the upgrade, which a browser only sees as a failed
    // socket: refresh first when it is about to expire, and every third failed attempt.
    if (!accessToken.value || accessExpiresInMs() < 30_000 || (this.#attempt > 0 && this.#attempt % 3 === 0)) {
      const ok = await refreshTokens();
      if (!this.#running) return;
      if (!ok && !accessToken.value) return; // signed out
    }
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
    let ws: WebSocket;
    try {
      ws = new WebSocket(url, [`access_token.${accessToken.value}`, 'access_token']);
    } catch {
      this.#scheduleReconnect();
      return;
    }
    this.#ws = ws;
    ws.onmessage = (e) => this.#onFrame(e.data);
    ws.onclose = (e) => {
      if (this.#ws !== ws) return;
      this.#clearSocket();
      if (!this.#running) return;
      if (e.code === 4001) {
        this.#running = false;
        this.state.value = 'idle';
        this.#handlers.onRevoked();
        return;
      }
      this.#scheduleReconnect();
    };
  }

  #onFrame(raw: unknown): void {
    if (typeof raw !== 'string') return;
    let ev: GatewayEvent;
    try {
      ev = JSON.parse(raw);
    } catch {
      return;
    }
    if (ev.type === 'reply') {
      const p = ev.request_id ? this.#pending.get(ev.request_id) : undefined;
      if (p && ev.request_id) {
        this.#pending.delete(ev.request_id);
        if (ev.ok) p.resolve(ev.data);
        else p.reject(Object.assign(new Error(ev.error?.message ?? 'failed'), { code: ev.error?.code }));
      }
      return;
    }
    if (typeof ev.seq === 'number') this.#lastSeq = Math.max(this.#lastSeq, ev.seq);
    if (ev.type === 'pong') {
      this.#awaitingPong = false;
      return;
    }
    if (ev.type === 'ready') {
      const ready = ev.data as Ready;
      const previous = this.#sessionId;
      const previousSeq = this.#lastSeq;
      this.#sessionId = ready.session_id;
      this.#attempt = 0;
      const reconnected = this.#everReady;
      this.#everReady = true;
      this.state.value = 'ready';
      this.#startHeartbeat(ready.heartbeat_interval_ms);
      // Resume first (missed events arrive in order), then let the store rebuild and reconcile.
      if (previous && reconnected)
        void this.send('resume', { session_id: previous, seq: previousSeq }, true).catch(() => {});
      this.#handlers.onReady(ready, reconnected);
      return;
    }
    this.#handlers.onEvent(ev);
  }

  #startHeartbeat(intervalMs: number): void {
    clearInterval(this.#heartbeat);
    this.#awaitingPong = false;
    this.#heartbeat = setInterval(
      () => {
        // No pong since the last ping: the connection is dead even if the socket has not noticed.
        if (this.#awaitingPong) {
          this.#ws?.close(4000, 'heartbeat timeout');
          return;
        }
        this.#awaitingPong = true;
        void this.send('ping', {}).catch(() => {});
      },
      Math.max(1_000, intervalMs * 0.8),
    );
  }

  #clearSocket(): void {
    clearInterval(this.#heartbeat);
    const ws = this.#ws;
    this.#ws = undefined;
    if (ws) {
      ws.onmessage = null;
      ws.onclose = null;
      if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close(1000);
    }
    for (const p of this.#pending.values()) p.reject(new Error('connection closed'));
    this.#pending.clear();
  }

  #scheduleReconnect(): void {
    this.state.value = 'reconnecting';
    clearTimeout(this.#timer);
    const base = Math.min(15_000, 500 * 2 ** this.#attempt);
    this.#attempt++;
    this.#timer = setTimeout(() => void this.#connect(), base / 2 + Math.random() * (base / 2));
  }

  #connectNow(): void {
    clearTimeout(this.#timer);
    void this.#connect();
  }
}
