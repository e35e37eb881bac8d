/**
 * One active voice channel: a mediasoup router and the peers in it. The room owns its peers, answers
 * what needs more than one peer (consuming another peer's producer, the participant list) and reports
 * upwards through events. It closes itself when its last peer leaves or its worker dies (the router's
 * 'workerclose'), closing every peer with the matching reason first.
 */
import { EventEmitter } from 'node:events';
import type { types as ms } from 'mediasoup';
import { errors } from '../errors.js';
import { type LeaveReason, Peer, type VoiceState } from './Peer.js';

export interface Participant extends VoiceState {
  producer_ids: string[];
}

export interface RoomOptions {
  channelId: string;
  router: ms.Router;
  webRtcServer: ms.WebRtcServer;
  /** Index of the worker slot serving the room (metrics, tests). */
  workerIndex: number;
  kinds: readonly ms.MediaKind[];
}

export interface RoomEvents {
  'peer-joined': [VoiceState];
  'peer-left': [{ userId: string; reason: LeaveReason }];
  'new-producer': [{ userId: string; producerId: string }];
  'producer-closed': [{ userId: string; producerId: string }];
  'state-changed': [VoiceState];
  closed: [LeaveReason];
}

export class Room extends EventEmitter<RoomEvents> {
  readonly channelId: string;
  readonly workerIndex: number;
  readonly #router: ms.Router;
  readonly #webRtcServer: ms.WebRtcServer;
  readonly #kinds: readonly ms.MediaKind[];
  readonly #peers = new Map<string, Peer>();
  #closed = false;

  static create(opts: RoomOptions): Room {
    return new Room(opts);
  }

  private constructor(opts: RoomOptions) {
    super();
    this.channelId = opts.channelId;
    this.workerIndex = opts.workerIndex;
    this.#router = opts.router;
    this.#webRtcServer = opts.webRtcServer;
    this.#kinds = opts.kinds;
    this.#router.once('workerclose', () => this.close('worker-died'));
  }

  get closed(): boolean {
    return this.#closed;
  }

  get size(): number {
    return this.#peers.size;
  }

  get rtpCapabilities(): ms.RouterRtpCapabilities {
    return this.#router.rtpCapabilities;
  }

  peer(userId: string): Peer | undefined {
    return this.#peers.get(userId);
  }

  peers(): Peer[] {
    return [...this.#peers.values()];
  }

  participants(except?: string): Participant[] {
    return this.peers()
      .filter((p) => p.userId !== except)
      .map((p) => ({ ...p.state, producer_ids: p.producerIds() }));
  }

  /** Adds a peer for the user. The caller has made sure the user is in no other room. */
  addPeer(userId: string, opts: { serverMuted?: boolean } = {}): Peer {
    if (this.#closed) throw errors.conflict('This voice channel just closed; join again.');
    if (this.#peers.has(userId)) throw errors.conflict('Already in this voice channel.');
    const peer = Peer.create({
      userId,
      router: this.#router,
      webRtcServer: this.#webRtcServer,
      kinds: this.#kinds,
      serverMuted: opts.serverMuted ?? false,
    });
    this.#peers.set(userId, peer);
    peer.on('producer-closed', ({ producerId }) => this.emit('producer-closed', { userId, producerId }));
    peer.on('state-changed', (state) => this.emit('state-changed', state));
    peer.once('closed', (reason) => {
      this.#peers.delete(userId);
      this.emit('peer-left', { userId, reason });
      if (this.#peers.size === 0) this.close(reason === 'worker-died' || reason === 'shutdown' ? reason : 'left');
    });
    this.emit('peer-joined', peer.state);
    return peer;
  }

  /** Produces on the user's send transport and tells the room about it. */
  async produce(peer: Peer, transportId: string, kind: ms.MediaKind, rtpParameters: ms.RtpParameters): Promise<string> {
    const producerId = await peer.produce(transportId, kind, rtpParameters);
    this.emit('new-producer', { userId: peer.userId, producerId });
    return producerId;
  }

  /** The consumer side of someone else's producer in this room; any other producer id is NOT_FOUND. */
  async consume(peer: Peer, producerId: string, rtpCapabilities: ms.RtpCapabilities) {
    let producer: ms.Producer | undefined;
    for (const other of this.#peers.values()) {
      if (other !== peer) producer ??= other.findProducer(producerId);
    }
    if (!producer) throw errors.notFound('No such producer in this voice channel.');
    return peer.consume(producer, rtpCapabilities);
  }

  /** Closes every peer, then the router. Idempotent. */
  close(reason: LeaveReason): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const peer of [...this.#peers.values()]) peer.close(reason);
    this.#router.close();
    this.emit('closed', reason);
  }
}
