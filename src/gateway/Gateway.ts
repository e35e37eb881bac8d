/**
 * The realtime gateway on `/ws` (DESIGN.md §7), on the same uWS app and port as the REST API: a small
 * coordinator that wires one object per job and owns the node's event sequence.
 *   upgrade.ts        the upgrade rules and handler (token, origin, per-IP limit)
 *   connection.ts     one connection (uWS user data, per-connection state, close hooks)
 *   registry.ts       the open connections, by user
 *   ready.ts          the first frame and the subscriptions it reflects
 *   subscriptions.ts  topics = what the user may VIEW; recomputed on `access_changed`
 *   bus-consumer.ts   the bus, strictly in order
 *   revocation.ts     `sessions_revoked` → 4001
 *   resume.ts         resumable sessions and the replay buffer
 *   flow.ts           op rate, malformed frames, backpressure
 *   ops.ts            the op handler map (core ops + each feature's)
 *   protocol.ts       frames and the op union;  repo.ts  the gateway's SQL
 */
import type { AppContext } from '../context.js';
import { errors } from '../errors.js';
import type { DispatchMessage } from '../events/bus.js';
import type { ClientConnection } from '../events/connection.js';
import { type ExpressApp, type TemplatedApp, uWS, uwsAppOf } from '../net/uws.js';
import { voiceOpHandlers } from '../voice/ops.js';
import { BusConsumer } from './bus-consumer.js';
import type { Connection, ConnectionHost, Socket, SocketData } from './connection.js';
import { BACKPRESSURE_CAP, FlowControl } from './flow.js';
import { coreOpHandlers, OpDispatcher } from './ops.js';
import { CLOSE, errorReply, eventFrame, parseFrame } from './protocol.js';
import { sendReady } from './ready.js';
import { ConnectionRegistry } from './registry.js';
import { Resumption } from './resume.js';
import { Revocations } from './revocation.js';
import { Subscriptions } from './subscriptions.js';
import { upgradeHandler } from './upgrade.js';

export const MAX_FRAME_BYTES = 64 * 1024;

/**
 * uWS checks idle sockets on a 4-second tick, so a timeout of N seconds closes a silent socket after
 * N-4 to N seconds. One tick more than two heartbeat intervals: a client that misses one heartbeat is
 * never dropped, one silent for two intervals is dropped within 4 s after that (DESIGN.md §7).
 */
export const UWS_TIMEOUT_TICK_SECONDS = 4;
export const idleTimeoutSeconds = (heartbeatMs: number): number =>
  Math.ceil((2 * heartbeatMs) / 1000 / UWS_TIMEOUT_TICK_SECONDS) * UWS_TIMEOUT_TICK_SECONDS + UWS_TIMEOUT_TICK_SECONDS;

export interface GatewayOptions {
  /** How often backpressure is checked (ms). */
  sweepMs?: number;
  replayMaxEntries?: number;
  replayMaxBytes?: number;
}

export class Gateway implements ConnectionHost {
  readonly #ctx: AppContext;
  readonly #app: TemplatedApp;
  readonly #registry: ConnectionRegistry;
  readonly #flow: FlowControl;
  readonly #resumption: Resumption;
  readonly #revocations: Revocations;
  readonly #subscriptions: Subscriptions;
  readonly #ops: OpDispatcher;
  readonly #timers: NodeJS.Timeout[] = [];
  readonly #unsubscribeBus: () => void;
  #seq = 0;
  #closed = false;

  static attach(ctx: AppContext, http: ExpressApp, opts: GatewayOptions = {}): Gateway {
    return new Gateway(ctx, uwsAppOf(http), opts);
  }

  private constructor(ctx: AppContext, app: TemplatedApp, opts: GatewayOptions) {
    this.#ctx = ctx;
    this.#app = app;
    this.#registry = new ConnectionRegistry(ctx.metrics);
    this.#flow = new FlowControl({
      rateLimitScale: ctx.config.rateLimitScale,
      windowScale: ctx.config.rateLimitWindowScale,
      onSlowConsumer: (conn) => this.#slowConsumer(conn),
    });
    this.#resumption = new Resumption({ maxEntries: opts.replayMaxEntries, maxBytes: opts.replayMaxBytes });
    this.#revocations = new Revocations(this.#registry, this.#resumption);
    this.#subscriptions = new Subscriptions(ctx.db, this.#registry);
    this.#ops = new OpDispatcher(
      {
        ...coreOpHandlers({
          db: ctx.db,
          events: ctx.events,
          resume: (conn, sessionId, seq) =>
            this.#resumption.resume(conn, sessionId, seq, () => this.#sendReady(conn, false)),
        }),
        ...voiceOpHandlers(ctx),
      },
      ctx.logger,
    );
    const consumer = new BusConsumer(
      {
        deliver: (m) => this.#deliver(m),
        revoke: (m) => this.#revocations.apply(m),
        recompute: (m) => this.#subscriptions.recompute(m),
      },
      ctx.logger,
    );
    app.ws<SocketData>('/ws', {
      compression: uWS.DISABLED,
      maxPayloadLength: MAX_FRAME_BYTES,
      // uWS stops queueing at twice the cap; the sweep closes anyone past the cap well before that.
      maxBackpressure: 2 * BACKPRESSURE_CAP,
      closeOnBackpressureLimit: 0,
      idleTimeout: idleTimeoutSeconds(ctx.config.gatewayHeartbeatMs),
      sendPingsAutomatically: false,
      upgrade: upgradeHandler({ ctx, host: this, isClosed: () => this.#closed }),
      open: (ws) => this.#open(ws),
      message: (ws, message, isBinary) => this.#message(ws.getUserData().conn, message, isBinary),
      close: (ws) => this.#closedByPeer(ws.getUserData().conn),
    });
    this.#unsubscribeBus = ctx.events.subscribe((m) => consumer.take(m));
    const sweep = setInterval(() => this.#flow.sweep(this.#registry.all()), opts.sweepMs ?? 100);
    const prune = setInterval(() => this.#prune(), 5000);
    sweep.unref();
    prune.unref();
    this.#timers.push(sweep, prune);
  }

  get connectionCount(): number {
    return this.#registry.size;
  }

  get logger() {
    return this.#ctx.logger;
  }

  /** A user's open connections on this node (a feature may keep state on them or watch them close). */
  connectionsOf(userId: string): ClientConnection[] {
    return this.#registry.ofUser(userId);
  }

  /** Ends every socket (1001) and stops consuming the bus. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribeBus();
    for (const t of this.#timers) clearInterval(t);
    for (const conn of [...this.#registry.all()]) this.end(conn, CLOSE.GOING_AWAY, 'server shutting down');
  }

  // ── ConnectionHost ───────────────────────────────────────────────────────────────────────────

  nextSeq(): number {
    return ++this.#seq;
  }

  sendFrame(conn: Connection, frame: string): void {
    if (!conn.closed) this.#flow.send(conn, frame);
  }

  end(conn: Connection, code: number, reason: string): void {
    if (conn.closed) return;
    conn.ws.end(code, reason);
    this.#closedByPeer(conn); // uWS calls the close handler synchronously too; it is idempotent
  }

  // ── lifecycle ────────────────────────────────────────────────────────────────────────────────

  #open(ws: Socket): void {
    const { conn } = ws.getUserData();
    conn.attach(ws);
    this.#registry.add(conn);
    if (this.#revocations.closeIfRaced(conn)) return;
    this.#resumption.opened(conn);
    conn.init = this.#sendReady(conn, true)
      .catch((err) => {
        this.#ctx.logger.error({ err }, 'gateway ready failed');
        this.end(conn, CLOSE.INTERNAL, 'internal error');
      })
      .finally(() => {
        conn.init = undefined;
      });
  }

  #closedByPeer(conn: Connection): void {
    if (!conn.markClosed()) return;
    this.#registry.remove(conn);
    this.#resumption.closed(conn, Date.now());
  }

  #sendReady(conn: Connection, first: boolean): Promise<void> {
    return sendReady(
      {
        subscriptions: this.#subscriptions,
        host: this,
        heartbeatMs: this.#ctx.config.gatewayHeartbeatMs,
        voiceStates: (channelIds) => this.#ctx.voice.voiceStates(channelIds),
      },
      conn,
      first,
    );
  }

  // ── frames from clients ──────────────────────────────────────────────────────────────────────

  #message(conn: Connection, message: ArrayBuffer, isBinary: boolean): void {
    if (!this.#flow.admitOp(conn, Date.now())) {
      this.end(conn, CLOSE.RATE_LIMITED, 'too many ops');
      return;
    }
    const parsed = isBinary ? undefined : parseFrame(Buffer.from(message).toString('utf8'));
    if (!parsed?.ok) {
      const error = parsed ? parsed.error : errors.binaryNotAccepted();
      conn.sendFrame(errorReply(parsed ? parsed.requestId : null, error));
      if (this.#flow.malformed(conn)) this.end(conn, CLOSE.TOO_MANY_MALFORMED, 'too many malformed frames');
      return;
    }
    if (conn.init) void conn.init.then(() => this.#ops.run(conn, parsed.op));
    else void this.#ops.run(conn, parsed.op);
  }

  // ── events to clients ────────────────────────────────────────────────────────────────────────

  #deliver(m: DispatchMessage): void {
    if (this.#closed) return;
    const seq = this.nextSeq();
    const frame = eventFrame(m.type, seq, m.data);
    this.#subscriptions.noteDispatch(m);
    this.#resumption.record(seq, m.topic, frame, Date.now());
    this.#app.publish(m.topic, frame, false, false);
    this.#ctx.metrics.gatewayEvents.inc();
    this.#flow.published(frame.length, this.#registry.all());
  }

  #slowConsumer(conn: Connection): void {
    if (conn.closed) return;
    this.#ctx.metrics.gatewaySlowConsumers.inc();
    this.#ctx.logger.warn(
      { userId: conn.userId, buffered: conn.ws.getBufferedAmount() },
      'gateway slow consumer closed',
    );
    this.#resumption.forget(conn.gatewaySessionId);
    this.end(conn, CLOSE.SLOW_CONSUMER, 'slow consumer');
  }

  #prune(): void {
    const now = Date.now();
    this.#resumption.prune(now);
    this.#subscriptions.prune(now);
    this.#revocations.prune(now);
  }
}
