/**
 * The voice feature's verbs, for the signalling layer (gateway ops) to call: join, transports,
 * produce/consume, mute/deafen, leave, forced removal. Owns the worker pool and the room directory;
 * knows which room each user is in (one voice channel per user). Every verb takes the acting user's
 * id and only ever touches that user's own peer, so another user's transport, producer or consumer id
 * is NOT_FOUND. Errors are AppErrors; what happens in rooms comes out as events (see
 * VoiceServiceEvents), which the signalling layer turns into voice_* gateway events.
 *
 * Permissions, rate limits and auditing are the caller's: it checks VIEW_CHANNEL/VOICE_CONNECT before
 * join, VOICE_SPEAK before produce and VOICE_MUTE_OTHERS before setServerMuted.
 */
import { EventEmitter } from 'node:events';
import type { types as ms } from 'mediasoup';
import type { Config } from '../config/index.js';
import { errors } from '../errors.js';
import type { Logger } from '../logger.js';
import { type IceServer, iceServersFor } from './ice-servers.js';
import type { ConsumerInfo, LeaveReason, Peer, TransportDirection, TransportInfo, VoiceState } from './Peer.js';
import type { Participant, Room } from './Room.js';
import { LocalRoomDirectory, type RoomDirectory } from './room-directory.js';
import { type PoolStatus, WorkerPool } from './WorkerPool.js';

export type { ConsumerInfo, LeaveReason, Participant, TransportDirection, TransportInfo, VoiceState };

export type VoiceStatus = PoolStatus;

export interface JoinResult {
  router_rtp_capabilities: ms.RouterRtpCapabilities;
  ice_servers: IceServer[];
  /** Everyone else already in the channel. */
  participants: Participant[];
}

export interface ChannelVoiceState extends VoiceState {
  channel_id: string;
}

export interface VoiceServiceEvents {
  'user-joined': [{ channelId: string; state: VoiceState }];
  /** Every way out: leave, move, forced removal, worker death, shutdown. */
  'user-left': [{ channelId: string; userId: string; reason: LeaveReason }];
  'state-update': [{ channelId: string; state: VoiceState }];
  'new-producer': [{ channelId: string; userId: string; producerId: string }];
  'producer-closed': [{ channelId: string; userId: string; producerId: string }];
}

export type VoiceConfig = Pick<
  Config,
  | 'voice'
  | 'rtcPort'
  | 'rtcListenIp'
  | 'rtcAnnouncedIp'
  | 'rtcWorkers'
  | 'voiceVideo'
  | 'stunUrls'
  | 'turnUrls'
  | 'turnSecret'
  | 'turnCredentialTtlSeconds'
>;

export interface VoiceServiceOptions {
  config: VoiceConfig;
  logger: Logger;
}

interface Membership {
  room: Room;
  peer: Peer;
  /** Who holds this voice session (the signalling layer's per-connection object); ops from others are NOT_FOUND. */
  owner: object | undefined;
  /** The channel's guild (server mutes are per guild; access changes arrive per guild). */
  guildId: string | null;
  /** The client declared end-to-end encrypted media at join. */
  e2ee: boolean;
}

export interface JoinOptions {
  /** The channel's user_limit, checked atomically with the join. */
  userLimit?: number | null;
  /** The holder of the new voice session (see `ownerOf`). */
  owner?: object;
  guildId?: string | null;
  e2ee?: boolean;
}

/** A user in voice, as the signalling layer re-checks them. */
export interface VoiceMember {
  userId: string;
  channelId: string;
  guildId: string | null;
  e2ee: boolean;
  owner: object | undefined;
}

export class VoiceService extends EventEmitter<VoiceServiceEvents> {
  readonly #config: VoiceConfig;
  readonly #logger: Logger;
  #pool: WorkerPool | undefined;
  #rooms: RoomDirectory | undefined;
  #starting = false;
  readonly #members = new Map<string, Membership>();
  /** `guildId:userId` of server-muted users: a server mute outlives leaving and rejoining (until restart). */
  readonly #serverMutes = new Set<string>();
  /** Per user, the latest join attempt: an older attempt that finishes later gives way. */
  readonly #joinAttempt = new Map<string, number>();
  #attempts = 0;
  #closed = false;

  /** Cheap: nothing starts until `start()`. */
  static create(opts: VoiceServiceOptions): VoiceService {
    return new VoiceService(opts);
  }

  private constructor(opts: VoiceServiceOptions) {
    super();
    this.#config = opts.config;
    this.#logger = opts.logger;
  }

  /**
   * Starts the worker pool (unless voice is off) and binds the media port. Never throws for a missing
   * or broken worker: voice is then unavailable and `status` says why.
   */
  async start(): Promise<VoiceStatus> {
    const config = this.#config;
    if (config.voice === 'off' || this.#closed) return this.status;
    this.#starting = true;
    const pool = await WorkerPool.create({
      workers: config.rtcWorkers,
      port: config.rtcPort,
      listenIp: config.rtcListenIp,
      announcedIp: config.rtcAnnouncedIp,
      logger: this.#logger,
    });
    this.#starting = false;
    if (this.#closed) {
      pool.close();
      return this.status;
    }
    const kinds: ms.MediaKind[] = config.voiceVideo === 'on' ? ['audio', 'video'] : ['audio'];
    this.#pool = pool;
    this.#rooms = new LocalRoomDirectory({ pool, kinds, onOpen: (room) => this.#wire(room) });
    return this.status;
  }

  get status(): VoiceStatus {
    if (this.#config.voice === 'off') return { available: false, reason: 'voice is turned off (VOICECHAT_VOICE=off)' };
    if (this.#closed) return { available: false, reason: 'voice is shutting down' };
    if (!this.#pool) return { available: false, reason: this.#starting ? 'voice is starting' : 'voice is not started' };
    return this.#pool.status;
  }

  /** The pool, for metrics and tests (killing a worker). */
  get pool(): WorkerPool | undefined {
    return this.#pool;
  }

  /** The voice channel the user is in, if any. */
  channelOf(userId: string): string | undefined {
    return this.#members.get(userId)?.room.channelId;
  }

  /** Voice states of everyone in the given channels (all channels when omitted), for `ready`. */
  voiceStates(channelIds?: Iterable<string>): ChannelVoiceState[] {
    const rooms = channelIds
      ? [...new Set(channelIds)].map((id) => this.#rooms?.get(id)).filter((r): r is Room => r !== undefined)
      : (this.#rooms?.rooms() ?? []);
    return rooms.flatMap((room) => room.peers().map((p) => ({ channel_id: room.channelId, ...p.state })));
  }

  /**
   * Puts the user in the channel's room, leaving any other voice channel first. `userLimit` (the
   * channel's user_limit) is checked atomically with the join. FORBIDDEN when full.
   */
  async join(userId: string, channelId: string, opts: JoinOptions = {}): Promise<JoinResult> {
    const rooms = this.#available();
    const attempt = ++this.#attempts;
    this.#joinAttempt.set(userId, attempt);
    const current = this.#members.get(userId);
    if (current) current.peer.close(current.room.channelId === channelId ? 'left' : 'moved');

    let room: Room;
    try {
      room = await rooms.open(channelId);
      if (room.closed) room = await rooms.open(channelId);
    } catch (err) {
      if (!this.status.available || this.#closed) throw errors.voiceUnavailable();
      throw err;
    }
    try {
      if (this.#joinAttempt.get(userId) !== attempt) throw errors.conflict('A newer voice join replaced this one.');
      // Another join of this user may have completed while the room was opening.
      const other = this.#members.get(userId);
      if (other) other.peer.close(other.room.channelId === channelId ? 'left' : 'moved');
      if (opts.userLimit && room.size >= opts.userLimit) throw errors.forbidden('This voice channel is full.');
      const guildId = opts.guildId ?? null;
      const peer = room.addPeer(userId, { serverMuted: this.#serverMutes.has(muteKey(guildId, userId)) });
      this.#members.set(userId, { room, peer, owner: opts.owner, guildId, e2ee: opts.e2ee ?? false });
      return {
        router_rtp_capabilities: room.rtpCapabilities,
        ice_servers: iceServersFor(this.#config, userId).ice_servers,
        participants: room.participants(userId),
      };
    } catch (err) {
      // A room opened for nobody must not linger with its router.
      if (room.size === 0) room.close('left');
      throw err;
    } finally {
      if (this.#joinAttempt.get(userId) === attempt) this.#joinAttempt.delete(userId);
    }
  }

  createTransport(userId: string, direction: TransportDirection): Promise<TransportInfo> {
    return this.#member(userId).peer.createTransport(direction);
  }

  connectTransport(userId: string, transportId: string, dtlsParameters: ms.DtlsParameters): Promise<void> {
    return this.#member(userId).peer.connectTransport(transportId, dtlsParameters);
  }

  async produce(
    userId: string,
    transportId: string,
    kind: ms.MediaKind,
    rtpParameters: ms.RtpParameters,
  ): Promise<{ producer_id: string }> {
    const { room, peer } = this.#member(userId);
    return { producer_id: await room.produce(peer, transportId, kind, rtpParameters) };
  }

  consume(userId: string, producerId: string, rtpCapabilities: ms.RtpCapabilities): Promise<ConsumerInfo> {
    const { room, peer } = this.#member(userId);
    return room.consume(peer, producerId, rtpCapabilities);
  }

  resumeConsumer(userId: string, consumerId: string): Promise<void> {
    return this.#member(userId).peer.resumeConsumer(consumerId);
  }

  setMuted(userId: string, muted: boolean): Promise<void> {
    return this.#member(userId).peer.setMuted(muted);
  }

  setDeafened(userId: string, deafened: boolean): Promise<void> {
    return this.#member(userId).peer.setDeafened(deafened);
  }

  /**
   * Server mute of another user (the caller checked VOICE_MUTE_OTHERS in `channelOf(target)`). It holds
   * for the target in every voice channel of that guild until lifted, also across leaving and rejoining.
   */
  setServerMuted(targetUserId: string, muted: boolean): Promise<void> {
    const m = this.#member(targetUserId);
    const key = muteKey(m.guildId, targetUserId);
    if (muted) this.#serverMutes.add(key);
    else this.#serverMutes.delete(key);
    return m.peer.setServerMuted(muted);
  }

  /** The holder of the user's voice session (undefined when not in voice or joined without one). */
  ownerOf(userId: string): object | undefined {
    return this.#members.get(userId)?.owner;
  }

  /** Everyone in voice on this node (for access re-checks). */
  members(): VoiceMember[] {
    return [...this.#members.entries()].map(([userId, m]) => ({
      userId,
      channelId: m.room.channelId,
      guildId: m.guildId,
      e2ee: m.e2ee,
      owner: m.owner,
    }));
  }

  /** Closes the user's producers (they lost VOICE_SPEAK); 0 when not in voice. */
  closeProducers(userId: string): number {
    return this.#members.get(userId)?.peer.closeProducers() ?? 0;
  }

  /**
   * Like `closePeer`, but only while the user is still in `channelId` under the same session holder
   * (a check that started before they moved or rejoined must not remove the new session).
   */
  closePeerIf(userId: string, expect: { channelId: string; owner?: object | undefined }, reason: LeaveReason): boolean {
    const m = this.#members.get(userId);
    if (!m || m.room.channelId !== expect.channelId) return false;
    if ('owner' in expect && m.owner !== expect.owner) return false;
    m.peer.close(reason);
    return true;
  }

  /** The user leaves voice; false when they were in none. */
  leave(userId: string): boolean {
    return this.closePeer(userId, 'left');
  }

  /**
   * Removes the user from voice at once and closes their transports (socket closed, kicked, banned,
   * permission lost). False when they were in none.
   */
  closePeer(userId: string, reason: LeaveReason = 'removed'): boolean {
    const m = this.#members.get(userId);
    if (!m) return false;
    m.peer.close(reason);
    return true;
  }

  /** Removes everyone from a channel (deleted, or turned into something else). */
  closeChannel(channelId: string, reason: LeaveReason = 'removed'): void {
    this.#rooms?.get(channelId)?.close(reason);
  }

  /** Counts for metrics and tests. */
  stats(): { rooms: number; peers: number; transports: number; producers: number; consumers: number } {
    const rooms = this.#rooms?.rooms() ?? [];
    const out = { rooms: rooms.length, peers: 0, transports: 0, producers: 0, consumers: 0 };
    for (const room of rooms) {
      for (const peer of room.peers()) {
        const c = peer.counts();
        out.peers += 1;
        out.transports += c.transports;
        out.producers += c.producers;
        out.consumers += c.consumers;
      }
    }
    return out;
  }

  /** Everyone leaves (reason 'shutdown'), then the workers stop. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const room of this.#rooms?.rooms() ?? []) room.close('shutdown');
    this.#pool?.close();
  }

  #available(): RoomDirectory {
    if (this.#closed || !this.#rooms || !this.status.available) throw errors.voiceUnavailable();
    return this.#rooms;
  }

  #member(userId: string): Membership {
    const m = this.#members.get(userId);
    if (!m) throw errors.notFound('You are not in a voice channel.');
    return m;
  }

  #wire(room: Room): void {
    const channelId = room.channelId;
    room.on('peer-joined', (state) => this.emit('user-joined', { channelId, state }));
    room.on('peer-left', ({ userId, reason }) => {
      if (this.#members.get(userId)?.room === room) this.#members.delete(userId);
      this.emit('user-left', { channelId, userId, reason });
    });
    room.on('state-changed', (state) => this.emit('state-update', { channelId, state }));
    room.on('new-producer', (e) => this.emit('new-producer', { channelId, ...e }));
    room.on('producer-closed', (e) => this.emit('producer-closed', { channelId, ...e }));
    room.once('closed', (reason) => this.#logger.debug({ channel_id: channelId, reason }, 'voice room closed'));
    this.#logger.debug({ channel_id: channelId, worker: room.workerIndex }, 'voice room opened');
  }
}

const muteKey = (guildId: string | null, userId: string) => `${guildId ?? ''}:${userId}`;
