/**
 * The realtime gateway on `/ws` (DESIGN.md §7), on the same uWS app and port as the REST API. Owns the
 * open connections, their topic subscriptions (`user:<id>`, `guild:<id>`, `channel:<id>` = exactly
 * what the user may VIEW), the node's event sequence and replay buffer, and the limits (ops rate,
 * malformed frames, backpressure, idle). It consumes the event bus strictly in order: a dispatch is
 * published to its topic at once; an `access_changed` recomputes subscriptions before anything queued
 * behind it is delivered; `sessions_revoked` closes the affected sockets with 4001.
 */
import { STATUS_CODES } from 'node:http';
import type { AppContext } from '../app/context.js';
import { presentChannel } from '../channels/presenter.js';
import { randomToken } from '../crypto/random.js';
import { AppError, errors, isAppError } from '../errors.js';
import type { AccessChangedMessage, BusMessage, DispatchMessage, SessionsRevokedMessage } from '../events/bus.js';
import { presentGuild, presentRole } from '../guilds/presenter.js';
import {
  type ExpressApp,
  type HttpRequest,
  type HttpResponse,
  type TemplatedApp,
  type us_socket_context_t,
  uWS,
  uwsAppOf,
  type WebSocket,
} from '../net/uws.js';
import { ipKey } from '../ratelimit/index.js';
import { presentSelf } from '../users/presenter.js';
import { handleOp, type OpSession } from './ops.js';
import { CLOSE, type ClientOp, errorReply, eventFrame, okReply, parseFrame } from './protocol.js';
import { ReplayBuffer } from './replay.js';
import { existingChannelIds, loadGuildVisibility, loadUserView, type UserView } from './repo.js';
import {
  originAllowed,
  peerAddress,
  refuseTokenInUrl,
  SELECTED_PROTOCOL,
  tokenFromProtocols,
  upgradeClientIp,
} from './upgrade.js';

export const MAX_FRAME_BYTES = 64 * 1024;
export const BACKPRESSURE_CAP = 1024 * 1024;
export const OPS_PER_WINDOW = 120;
export const OPS_WINDOW_MS = 60_000;
export const MAX_MALFORMED = 10;
/**
 * Backpressure is checked every 100 ms and whenever this many bytes were published since the last
 * check, so a slow socket is caught at most this far past the cap — well below uWS's own ceiling
 * (2 × cap), which keeps room for the 4008 close frame.
 */
const SWEEP_EVERY_BYTES = 256 * 1024;
export const RESUME_WINDOW_MS = 60_000;

/** Per-connection state (uWS user data). Kept small: 10,000 idle connections must fit in 150 MB. */
interface Conn {
  userId: string;
  /** The auth session (JWT `sid`) this socket was opened with. */
  authSid: string;
  /** The gateway session id (for `resume`). */
  gsid: string;
  /** When its token and session were checked (a revocation after that, before open, closes it). */
  authAt: number;
  /** Seq of this connection's first `ready`: node events up to it were not delivered live here. */
  readySeq: number;
  ready: boolean;
  closed: boolean;
  opsWindowStart: number;
  ops: number;
  malformed: number;
}

type WS = WebSocket<Conn>;

interface Resumable {
  userId: string;
  authSid: string;
  /** When the socket closed; undefined while it is open. */
  closedAt: number | undefined;
}

export interface GatewayOptions {
  /** How often backpressure is checked (ms). */
  sweepMs?: number;
  replayMaxEntries?: number;
  replayMaxBytes?: number;
}

export class Gateway {
  readonly #ctx: AppContext;
  readonly #app: TemplatedApp;
  readonly #conns = new Set<WS>();
  readonly #byUser = new Map<string, Set<WS>>();
  readonly #inits = new Map<Conn, Promise<void>>();
  readonly #resumable = new Map<string, Resumable>();
  /** channel id → guild id ('' for DMs), learnt when a connection subscribes. */
  readonly #channelGuild = new Map<string, string>();
  readonly #replay: ReplayBuffer;
  readonly #opsLimit: number;
  readonly #opsWindowMs: number;
  readonly #timers: NodeJS.Timeout[] = [];
  readonly #unsubscribeBus: () => void;
  #seq = 0;
  #accessEpoch = 0;
  /**
   * `guild:user` → when a real `member_leave` for that user was published: they already received it
   * (publishers send it before the `access_changed`), so no second, synthetic one.
   */
  readonly #publishedLeaves = new Map<string, number>();
  /** user id → when some of their sessions were last revoked (for upgrades in flight at that moment). */
  readonly #recentRevocations = new Map<string, number>();
  /** Bytes published since the last backpressure sweep (no socket can have gained more). */
  #publishedSinceSweep = 0;
  #queue: BusMessage[] = [];
  #queueHead = 0;
  #draining = false;
  #closed = false;

  static attach(ctx: AppContext, http: ExpressApp, opts: GatewayOptions = {}): Gateway {
    return new Gateway(ctx, uwsAppOf(http), opts);
  }

  private constructor(ctx: AppContext, app: TemplatedApp, opts: GatewayOptions) {
    this.#ctx = ctx;
    this.#app = app;
    this.#opsLimit = Math.max(1, Math.round(OPS_PER_WINDOW * ctx.config.rateLimitScale));
    this.#opsWindowMs = Math.max(1000, Math.round(OPS_WINDOW_MS * ctx.config.rateLimitWindowScale));
    this.#replay = new ReplayBuffer({
      maxEntries: opts.replayMaxEntries ?? 50_000,
      maxBytes: opts.replayMaxBytes ?? 32 * 1024 * 1024,
      maxAgeMs: RESUME_WINDOW_MS,
    });
    const heartbeatMs = ctx.config.gatewayHeartbeatMs;
    app.ws<Conn>('/ws', {
      compression: uWS.DISABLED,
      maxPayloadLength: MAX_FRAME_BYTES,
      // uWS stops queueing at twice the cap; the sweep closes anyone past the cap well before that.
      maxBackpressure: 2 * BACKPRESSURE_CAP,
      closeOnBackpressureLimit: 0,
      idleTimeout: Math.max(8, Math.ceil((2 * heartbeatMs) / 1000)),
      sendPingsAutomatically: false,
      upgrade: (res, req, context) => this.#upgrade(res, req, context),
      open: (ws) => this.#open(ws),
      message: (ws, message, isBinary) => this.#message(ws, message, isBinary),
      close: (ws) => this.#onClose(ws),
    });
    this.#unsubscribeBus = ctx.events.subscribe((m) => this.#onBus(m));
    const sweep = setInterval(() => this.#sweepBackpressure(), opts.sweepMs ?? 100);
    const prune = setInterval(() => this.#prune(), 5000);
    sweep.unref();
    prune.unref();
    this.#timers.push(sweep, prune);
  }

  get connectionCount(): number {
    return this.#conns.size;
  }

  /** Ends every socket (1001) and stops consuming the bus. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribeBus();
    for (const t of this.#timers) clearInterval(t);
    for (const ws of [...this.#conns]) this.#end(ws, CLOSE.GOING_AWAY, 'server shutting down');
  }

  // ── upgrade ──────────────────────────────────────────────────────────────────────────────────

  #upgrade(res: HttpResponse, req: HttpRequest, context: us_socket_context_t): void {
    const { config, limits, sessions, logger } = this.#ctx;
    // The request object dies at the first await: copy what we need now.
    const key = req.getHeader('sec-websocket-key');
    const protocols = req.getHeader('sec-websocket-protocol');
    const extensions = req.getHeader('sec-websocket-extensions');
    const origin = req.getHeader('origin');
    const host = req.getHeader('host');
    const query = req.getQuery() ?? '';
    const ip = upgradeClientIp(config, peerAddress(res.getRemoteAddressAsText()), req.getHeader('x-forwarded-for'));
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    void (async () => {
      try {
        if (this.#closed) throw errors.unavailable('The server is shutting down.');
        await limits.consume('ws_upgrade_ip', ipKey(ip));
        refuseTokenInUrl(query);
        if (!originAllowed(config, origin, host)) throw errors.forbidden('This origin may not connect.');
        const authAt = Date.now();
        const auth = await sessions.authenticate(tokenFromProtocols(protocols));
        if (aborted) return;
        if (this.#closed) throw errors.unavailable('The server is shutting down.');
        const conn: Conn = {
          userId: auth.userId,
          authSid: auth.sessionId,
          authAt,
          gsid: randomToken(16),
          readySeq: 0,
          ready: false,
          closed: false,
          opsWindowStart: Date.now(),
          ops: 0,
          malformed: 0,
        };
        res.cork(() => res.upgrade(conn, key, SELECTED_PROTOCOL, extensions, context));
      } catch (e) {
        if (aborted) return;
        const err = isAppError(e) ? e : errors.internal();
        if (!isAppError(e)) logger.error({ err: e }, 'gateway upgrade failed');
        else logger.debug({ code: err.code, status: err.status, ip }, 'gateway upgrade refused');
        res.cork(() => {
          res.writeStatus(`${err.status} ${STATUS_CODES[err.status] ?? 'Error'}`);
          res.writeHeader('Content-Type', 'application/json');
          res.writeHeader('Cache-Control', 'no-store');
          for (const [name, value] of Object.entries(err.headers ?? {})) res.writeHeader(name, value);
          res.end(JSON.stringify({ error: err.toJSON() }), true);
        });
      }
    })();
  }

  // ── lifecycle ────────────────────────────────────────────────────────────────────────────────

  #open(ws: WS): void {
    const c = ws.getUserData();
    this.#conns.add(ws);
    const mine = this.#byUser.get(c.userId);
    if (mine) mine.add(ws);
    else this.#byUser.set(c.userId, new Set([ws]));
    this.#ctx.metrics.gatewayConnections.inc();
    const revokedAt = this.#recentRevocations.get(c.userId);
    if (revokedAt !== undefined && revokedAt >= c.authAt) {
      // Sessions of this user were revoked while this upgrade was in flight: it may have been one.
      ws.cork(() => this.#send(ws, eventFrame('session_revoked', ++this.#seq, {})));
      this.#end(ws, CLOSE.SESSION_REVOKED, 'session revoked');
      return;
    }
    this.#resumable.set(c.gsid, { userId: c.userId, authSid: c.authSid, closedAt: undefined });
    const init = this.#sendReady(ws, true)
      .catch((err) => {
        this.#ctx.logger.error({ err }, 'gateway ready failed');
        this.#end(ws, 1011, 'internal error');
      })
      .finally(() => this.#inits.delete(c));
    this.#inits.set(c, init);
  }

  #onClose(ws: WS): void {
    const c = ws.getUserData();
    if (c.closed) return;
    c.closed = true;
    this.#conns.delete(ws);
    const mine = this.#byUser.get(c.userId);
    mine?.delete(ws);
    if (mine?.size === 0) this.#byUser.delete(c.userId);
    this.#ctx.metrics.gatewayConnections.dec();
    const r = this.#resumable.get(c.gsid);
    if (r) r.closedAt = Date.now();
  }

  #end(ws: WS, code: number, reason: string): void {
    const c = ws.getUserData();
    if (c.closed) return;
    ws.end(code, reason);
    this.#onClose(ws); // uWS calls the close handler synchronously too; #onClose is idempotent
  }

  /**
   * Loads the user's view, subscribes the socket to exactly it, then sends `ready`. An access change
   * processed while the view was loading makes it stale: load again.
   */
  async #sendReady(ws: WS, first: boolean): Promise<void> {
    const c = ws.getUserData();
    let view: UserView;
    for (let attempt = 0; ; attempt++) {
      const epoch = this.#accessEpoch;
      view = await loadUserView(this.#ctx.db, c.userId);
      if (c.closed) return;
      if (epoch === this.#accessEpoch || attempt >= 5) break;
    }
    if (!view.user) {
      this.#end(ws, CLOSE.SESSION_REVOKED, 'user no longer exists');
      return;
    }
    ws.cork(() => {
      this.#applyTopics(ws, this.#topicsOf(c.userId, view));
      const seq = ++this.#seq;
      if (first) c.readySeq = seq;
      this.#send(
        ws,
        eventFrame('ready', seq, {
          user: presentSelf(view.user as NonNullable<UserView['user']>),
          session_id: c.gsid,
          heartbeat_interval_ms: this.#ctx.config.gatewayHeartbeatMs,
          guilds: view.guilds.map((g) => ({
            ...presentGuild(g.guild),
            channels: g.channels.sort((a, b) => Number(a.position) - Number(b.position)).map(presentChannel),
            roles: g.roles.sort((a, b) => Number(a.position) - Number(b.position)).map(presentRole),
            members_count: g.membersCount,
          })),
          dm_channels: view.dms.map((d) => ({ ...presentChannel(d.channel), recipient_ids: d.recipientIds })),
          voice_states: [],
        }),
      );
    });
    c.ready = true;
  }

  /** The topics a view entitles a connection to, remembering each channel's guild. */
  #topicsOf(userId: string, view: UserView): Set<string> {
    const topics = new Set<string>([`user:${userId}`]);
    for (const g of view.guilds) {
      topics.add(`guild:${g.guild.id}`);
      for (const ch of g.channels) {
        topics.add(`channel:${ch.id}`);
        this.#channelGuild.set(ch.id, g.guild.id);
      }
    }
    for (const d of view.dms) {
      topics.add(`channel:${d.channel.id}`);
      this.#channelGuild.set(d.channel.id, '');
    }
    return topics;
  }

  /**
   * Makes the socket's subscriptions equal `wanted` (restricted to `scope` when given: only topics the
   * predicate accepts are touched). Returns the topics it lost.
   */
  #applyTopics(ws: WS, wanted: Set<string>, scope?: (topic: string) => boolean): string[] {
    const lost: string[] = [];
    const current = ws.getTopics();
    for (const t of current) {
      if (scope && !scope(t)) continue;
      if (!wanted.has(t)) {
        ws.unsubscribe(t);
        lost.push(t);
      }
    }
    const have = new Set(current);
    for (const t of wanted) if (!have.has(t)) ws.subscribe(t);
    return lost;
  }

  // ── frames from clients ──────────────────────────────────────────────────────────────────────

  #message(ws: WS, message: ArrayBuffer, isBinary: boolean): void {
    const c = ws.getUserData();
    const now = Date.now();
    if (now - c.opsWindowStart >= this.#opsWindowMs) {
      c.opsWindowStart = now;
      c.ops = 0;
    }
    if (++c.ops > this.#opsLimit) {
      this.#end(ws, CLOSE.RATE_LIMITED, 'too many ops');
      return;
    }
    if (isBinary) {
      this.#malformed(ws, null, new AppError('BINARY_NOT_ACCEPTED', 400, 'Frames must be JSON text.'));
      return;
    }
    const parsed = parseFrame(Buffer.from(message).toString('utf8'));
    if (!parsed.ok) {
      this.#malformed(ws, parsed.requestId, parsed.error);
      return;
    }
    const init = this.#inits.get(c);
    if (init) void init.then(() => this.#run(ws, parsed.op));
    else void this.#run(ws, parsed.op);
  }

  #malformed(ws: WS, requestId: string | null, error: AppError): void {
    const c = ws.getUserData();
    this.#send(ws, errorReply(requestId, error));
    if (++c.malformed >= MAX_MALFORMED) this.#end(ws, CLOSE.TOO_MANY_MALFORMED, 'too many malformed frames');
  }

  async #run(ws: WS, op: ClientOp): Promise<void> {
    const c = ws.getUserData();
    if (c.closed) return;
    try {
      const data = await handleOp(this.#session(ws), op);
      if (op.request_id && !c.closed) ws.cork(() => this.#send(ws, okReply(op.request_id as string, data)));
    } catch (e) {
      const err = isAppError(e) ? e : errors.internal();
      if (!isAppError(e)) this.#ctx.logger.error({ err: e, op: op.type }, 'gateway op failed');
      if (!c.closed) ws.cork(() => this.#send(ws, errorReply(op.request_id ?? null, err)));
    }
  }

  #session(ws: WS): OpSession {
    const c = ws.getUserData();
    return {
      ctx: this.#ctx,
      userId: c.userId,
      sendEvent: (type, data) => {
        if (!c.closed) ws.cork(() => this.#send(ws, eventFrame(type, ++this.#seq, data)));
      },
      isSubscribed: (topic) => !c.closed && ws.isSubscribed(topic),
      guildIds: () =>
        c.closed
          ? []
          : ws
              .getTopics()
              .filter((t) => t.startsWith('guild:'))
              .map((t) => t.slice(6)),
      resume: (sessionId, seq) => this.#resume(ws, sessionId, seq),
    };
  }

  /**
   * Replays what the old session missed: node events after `seq` up to this connection's `ready`
   * (later ones reached it live), for topics it may VIEW now. Otherwise `resume_failed` + fresh `ready`.
   */
  async #resume(ws: WS, sessionId: string, seq: number): Promise<{ replayed: number }> {
    const c = ws.getUserData();
    const old = this.#resumable.get(sessionId);
    const now = Date.now();
    const ok =
      old !== undefined &&
      sessionId !== c.gsid &&
      old.userId === c.userId &&
      (old.closedAt === undefined || now - old.closedAt <= RESUME_WINDOW_MS) &&
      seq <= c.readySeq &&
      this.#replay.covers(seq);
    if (!ok) {
      this.#send(ws, eventFrame('resume_failed', ++this.#seq, { session_id: sessionId }));
      await this.#sendReady(ws, false);
      throw new AppError('RESUME_FAILED', 400, 'That session cannot be resumed; a fresh ready was sent.');
    }
    this.#resumable.delete(sessionId);
    let replayed = 0;
    ws.cork(() => {
      for (const e of this.#replay.range(seq, c.readySeq)) {
        if (!ws.isSubscribed(e.topic)) continue;
        this.#send(ws, e.frame);
        replayed++;
      }
    });
    return { replayed };
  }

  #send(ws: WS, frame: string): void {
    const c = ws.getUserData();
    if (c.closed) return;
    if (ws.send(frame, false, false) === 2 || ws.getBufferedAmount() > BACKPRESSURE_CAP) this.#slowConsumer(ws);
  }

  // ── bus consumption (in order) ───────────────────────────────────────────────────────────────

  #onBus(m: BusMessage): void {
    if (!this.#draining && m.kind === 'dispatch') {
      this.#deliver(m);
      return;
    }
    this.#queue.push(m);
    if (!this.#draining) this.#drain();
  }

  #drain(): void {
    this.#draining = true;
    while (this.#queueHead < this.#queue.length) {
      const m = this.#queue[this.#queueHead++] as BusMessage;
      if (m.kind === 'dispatch') this.#deliver(m);
      else if (m.kind === 'sessions_revoked') this.#revoke(m);
      else {
        this.#accessEpoch++;
        this.#recompute(m)
          .catch((err) => this.#ctx.logger.error({ err, guildId: m.guildId }, 'gateway access recompute failed'))
          .finally(() => this.#drain());
        return;
      }
    }
    this.#queue = [];
    this.#queueHead = 0;
    this.#draining = false;
  }

  #deliver(m: DispatchMessage): void {
    if (this.#closed) return;
    const seq = ++this.#seq;
    const frame = eventFrame(m.type, seq, m.data);
    if (m.type === 'member_leave') this.#notePublishedLeave(m.data);
    this.#replay.push({ seq, topic: m.topic, frame, at: Date.now() });
    this.#app.publish(m.topic, frame, false, false);
    this.#ctx.metrics.gatewayEvents.inc();
    this.#publishedSinceSweep += frame.length;
    if (this.#publishedSinceSweep > SWEEP_EVERY_BYTES) this.#sweepBackpressure();
  }

  #notePublishedLeave(data: unknown): void {
    const d = data as { guild_id?: unknown; user_id?: unknown } | null;
    if (typeof d?.guild_id !== 'string' || typeof d.user_id !== 'string') return;
    if (this.#publishedLeaves.size > 100_000) this.#publishedLeaves.clear();
    this.#publishedLeaves.set(`${d.guild_id}:${d.user_id}`, Date.now());
  }

  #revoke(m: SessionsRevokedMessage): void {
    if (this.#recentRevocations.size > 100_000) this.#recentRevocations.clear();
    this.#recentRevocations.set(m.userId, Date.now());
    const hit = (authSid: string) =>
      m.sessionIds === 'all' ? authSid !== m.exceptSessionId : m.sessionIds.includes(authSid);
    for (const [gsid, r] of this.#resumable) if (r.userId === m.userId && hit(r.authSid)) this.#resumable.delete(gsid);
    for (const ws of [...(this.#byUser.get(m.userId) ?? [])]) {
      const c = ws.getUserData();
      if (!hit(c.authSid)) continue;
      ws.cork(() => this.#send(ws, eventFrame('session_revoked', ++this.#seq, {})));
      this.#end(ws, CLOSE.SESSION_REVOKED, 'session revoked');
    }
  }

  /**
   * Brings subscriptions in line with the database after roles, overrides, membership or bans
   * changed. Named users get their whole view recomputed; a guild-wide change recomputes that guild
   * for everyone subscribed to it. A lost guild yields a `member_leave` view, a lost channel that
   * still exists a `channel_delete` view (a deleted one already had its real event).
   */
  async #recompute(m: AccessChangedMessage): Promise<void> {
    const { db } = this.#ctx;
    const guildTopic = `guild:${m.guildId}`;
    const targets: WS[] = [];
    if (m.userIds) {
      for (const u of m.userIds) for (const ws of this.#byUser.get(u) ?? []) targets.push(ws);
    } else {
      for (const ws of this.#conns) if (ws.isSubscribed(guildTopic)) targets.push(ws);
    }
    if (targets.length === 0) return;
    const userIds = [...new Set(targets.map((ws) => ws.getUserData().userId))];

    if (m.userIds) {
      const views = new Map<string, Set<string>>();
      for (const u of userIds) views.set(u, this.#topicsOf(u, await loadUserView(db, u)));
      const candidates = this.#lostCandidates(targets, (ws) => views.get(ws.getUserData().userId) as Set<string>);
      const existing = await existingChannelIds(db, candidates.channels);
      const guildsLeft = await this.#existingGuilds(candidates.guilds);
      for (const ws of targets) {
        const c = ws.getUserData();
        if (c.closed) continue;
        ws.cork(() => {
          const lost = this.#applyTopics(ws, views.get(c.userId) as Set<string>);
          this.#sendLossViews(ws, lost, existing, guildsLeft);
        });
      }
      return;
    }

    const vis = await loadGuildVisibility(db, m.guildId, userIds);
    const inGuild = (t: string) =>
      t === guildTopic || (t.startsWith('channel:') && this.#channelGuild.get(t.slice(8)) === m.guildId);
    const wantedFor = (ws: WS): Set<string> => {
      const visible = vis?.visible.get(ws.getUserData().userId);
      const wanted = new Set<string>();
      if (!visible) return wanted;
      wanted.add(guildTopic);
      for (const id of visible) {
        wanted.add(`channel:${id}`);
        this.#channelGuild.set(id, m.guildId);
      }
      return wanted;
    };
    const wanted = new Map(targets.map((ws) => [ws, wantedFor(ws)]));
    const candidates = this.#lostCandidates(targets, (ws) => wanted.get(ws) as Set<string>, inGuild);
    const existing = vis ? new Set([...candidates.channels].filter((id) => vis.channelIds.has(id))) : new Set<string>();
    const guildsLeft = vis ? new Set([m.guildId]) : new Set<string>();
    for (const ws of targets) {
      const c = ws.getUserData();
      if (c.closed) continue;
      ws.cork(() => {
        const lost = this.#applyTopics(ws, wanted.get(ws) as Set<string>, inGuild);
        this.#sendLossViews(ws, lost, existing, guildsLeft);
      });
    }
    if (vis)
      for (const [id, g] of this.#channelGuild)
        if (g === m.guildId && !vis.channelIds.has(id)) this.#channelGuild.delete(id);
  }

  /** Channel and guild ids some target is about to lose (to check which still exist). */
  #lostCandidates(targets: WS[], wanted: (ws: WS) => Set<string>, scope?: (t: string) => boolean) {
    const channels = new Set<string>();
    const guilds = new Set<string>();
    for (const ws of targets) {
      if (ws.getUserData().closed) continue;
      const w = wanted(ws);
      for (const t of ws.getTopics()) {
        if ((scope && !scope(t)) || w.has(t)) continue;
        if (t.startsWith('channel:')) channels.add(t.slice(8));
        else if (t.startsWith('guild:')) guilds.add(t.slice(6));
      }
    }
    return { channels: [...channels], guilds: [...guilds] };
  }

  async #existingGuilds(ids: string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const rows = (await this.#ctx.db('guilds').whereIn('id', ids).select('id')) as { id: string }[];
    return new Set(rows.map((r) => r.id));
  }

  #sendLossViews(ws: WS, lost: string[], existingChannels: Set<string>, existingGuilds: Set<string>): void {
    const c = ws.getUserData();
    const lostGuilds = new Set(lost.filter((t) => t.startsWith('guild:')).map((t) => t.slice(6)));
    for (const g of lostGuilds) {
      if (!existingGuilds.has(g) || this.#publishedLeaves.has(`${g}:${c.userId}`)) continue;
      this.#send(ws, eventFrame('member_leave', ++this.#seq, { guild_id: g, user_id: c.userId }));
    }
    for (const t of lost) {
      if (!t.startsWith('channel:')) continue;
      const id = t.slice(8);
      const guildId = this.#channelGuild.get(id) ?? null;
      if (guildId && lostGuilds.has(guildId)) continue; // implied by member_leave
      if (existingChannels.has(id))
        this.#send(ws, eventFrame('channel_delete', ++this.#seq, { id, guild_id: guildId || null }));
    }
  }

  // ── housekeeping ─────────────────────────────────────────────────────────────────────────────

  #slowConsumer(ws: WS): void {
    const c = ws.getUserData();
    if (c.closed) return;
    this.#ctx.metrics.gatewaySlowConsumers.inc();
    this.#ctx.logger.warn({ userId: c.userId, buffered: ws.getBufferedAmount() }, 'gateway slow consumer closed');
    this.#resumable.delete(c.gsid);
    this.#end(ws, CLOSE.SLOW_CONSUMER, 'slow consumer');
  }

  #sweepBackpressure(): void {
    this.#publishedSinceSweep = 0;
    for (const ws of this.#conns) if (ws.getBufferedAmount() > BACKPRESSURE_CAP) this.#slowConsumer(ws);
  }

  #prune(): void {
    const now = Date.now();
    this.#replay.prune(now);
    for (const [key, at] of this.#publishedLeaves) if (now - at > RESUME_WINDOW_MS) this.#publishedLeaves.delete(key);
    for (const [user, at] of this.#recentRevocations)
      if (now - at > RESUME_WINDOW_MS) this.#recentRevocations.delete(user);
    for (const [gsid, r] of this.#resumable) {
      if (r.closedAt !== undefined && now - r.closedAt > RESUME_WINDOW_MS) this.#resumable.delete(gsid);
    }
  }
}
