/**
 * One user in one voice room: owns that user's WebRTC transports, producers and consumers, and their
 * voice state (self mute/deafen, server mute). Every id a caller names is looked up among this peer's
 * own objects only, so an id belonging to someone else is NOT_FOUND. The peer never calls its room;
 * it reports through events ('producer-closed', 'state-changed', 'closed').
 *
 * Mute and server mute pause the peer's producers in the worker (nothing is forwarded); deafen pauses
 * its consumers (nothing is sent to it), remembering which ones the client itself had resumed.
 */
import { EventEmitter } from 'node:events';
import type { types as ms } from 'mediasoup';
import { errors } from '../errors.js';

export type TransportDirection = 'send' | 'recv';

/** Why a peer left its room (the signalling layer turns every one into voice_user_left). */
export type LeaveReason = 'left' | 'moved' | 'disconnected' | 'removed' | 'worker-died' | 'shutdown';

export interface VoiceState {
  user_id: string;
  muted: boolean;
  deafened: boolean;
  server_muted: boolean;
}

export interface TransportInfo {
  transport_id: string;
  ice_parameters: ms.IceParameters;
  ice_candidates: ms.IceCandidate[];
  dtls_parameters: ms.DtlsParameters;
}

export interface ConsumerInfo {
  consumer_id: string;
  producer_id: string;
  kind: ms.MediaKind;
  rtp_parameters: ms.RtpParameters;
}

export interface PeerOptions {
  userId: string;
  router: ms.Router;
  webRtcServer: ms.WebRtcServer;
  /** Media kinds this peer may produce. */
  kinds: readonly ms.MediaKind[];
  /** Transports per direction (mediasoup-client uses one of each; a second allows a clean reconnect). */
  maxTransportsPerDirection?: number;
  /** Producers per peer. */
  maxProducers?: number;
  /** Starts server-muted (a server mute outlives leaving and rejoining). */
  serverMuted?: boolean;
}

export interface PeerEvents {
  'producer-closed': [{ producerId: string }];
  'state-changed': [VoiceState];
  closed: [LeaveReason];
}

interface OwnedTransport {
  transport: ms.WebRtcTransport;
  direction: TransportDirection;
}

interface OwnedConsumer {
  consumer: ms.Consumer;
  /** The client asked for it to flow (voice_resume_consumer); deafen pauses it regardless. */
  wanted: boolean;
}

export class Peer extends EventEmitter<PeerEvents> {
  readonly userId: string;
  readonly #router: ms.Router;
  readonly #webRtcServer: ms.WebRtcServer;
  readonly #kinds: readonly ms.MediaKind[];
  readonly #maxTransports: number;
  readonly #maxProducers: number;
  readonly #transports = new Map<string, OwnedTransport>();
  readonly #producers = new Map<string, ms.Producer>();
  readonly #consumers = new Map<string, OwnedConsumer>();
  #muted = false;
  #deafened = false;
  #serverMuted = false;
  #closed = false;

  static create(opts: PeerOptions): Peer {
    return new Peer(opts);
  }

  private constructor(opts: PeerOptions) {
    super();
    this.userId = opts.userId;
    this.#router = opts.router;
    this.#webRtcServer = opts.webRtcServer;
    this.#kinds = opts.kinds;
    this.#maxTransports = opts.maxTransportsPerDirection ?? 2;
    this.#maxProducers = opts.maxProducers ?? 2;
    this.#serverMuted = opts.serverMuted ?? false;
  }

  get closed(): boolean {
    return this.#closed;
  }

  get state(): VoiceState {
    return {
      user_id: this.userId,
      muted: this.#muted,
      deafened: this.#deafened,
      server_muted: this.#serverMuted,
    };
  }

  producerIds(): string[] {
    return [...this.#producers.keys()];
  }

  /** Counts of owned objects (metrics, tests). */
  counts(): { transports: number; producers: number; consumers: number } {
    return { transports: this.#transports.size, producers: this.#producers.size, consumers: this.#consumers.size };
  }

  /** One of this peer's producers, or undefined (the room looks producers up for consumers). */
  findProducer(producerId: string): ms.Producer | undefined {
    return this.#producers.get(producerId);
  }

  async createTransport(direction: TransportDirection): Promise<TransportInfo> {
    this.#assertOpen();
    const same = [...this.#transports.values()].filter((t) => t.direction === direction).length;
    if (same >= this.#maxTransports) {
      throw errors.conflict(`At most ${this.#maxTransports} ${direction} transports per voice connection.`);
    }
    const transport = await this.#router.createWebRtcTransport({
      webRtcServer: this.#webRtcServer,
      enableUdp: true,
      enableTcp: true,
      preferUdp: true,
      appData: { userId: this.userId, direction },
    });
    // The peer may have left while the worker was answering.
    if (this.#closed) {
      transport.close();
      throw errors.notFound('You are not in a voice channel.');
    }
    this.#transports.set(transport.id, { transport, direction });
    transport.observer.once('close', () => this.#transports.delete(transport.id));
    return {
      transport_id: transport.id,
      ice_parameters: transport.iceParameters,
      ice_candidates: transport.iceCandidates,
      dtls_parameters: transport.dtlsParameters,
    };
  }

  async connectTransport(transportId: string, dtlsParameters: ms.DtlsParameters): Promise<void> {
    const { transport } = this.#ownTransport(transportId);
    if (transport.dtlsState !== 'new') throw errors.conflict('That transport is already connected.');
    await transport.connect({ dtlsParameters }).catch(rethrowAsValidation);
  }

  async produce(transportId: string, kind: ms.MediaKind, rtpParameters: ms.RtpParameters): Promise<string> {
    const owned = this.#ownTransport(transportId);
    if (owned.direction !== 'send') throw errors.validation('Media is sent on a send transport.');
    if (!this.#kinds.includes(kind)) throw errors.validation(`This server accepts ${this.#kinds.join(' and ')} only.`);
    if (this.#producers.size >= this.#maxProducers) {
      throw errors.conflict(`At most ${this.#maxProducers} producers per voice connection.`);
    }
    const producer = await owned.transport
      .produce({ kind, rtpParameters, paused: this.#silenced(), appData: { userId: this.userId } })
      .catch(rethrowAsValidation);
    if (this.#closed) {
      producer.close();
      throw errors.notFound('You are not in a voice channel.');
    }
    this.#producers.set(producer.id, producer);
    producer.observer.once('close', () => {
      this.#producers.delete(producer.id);
      // Also while the peer closes: the others learn of each producer before the peer's departure.
      this.emit('producer-closed', { producerId: producer.id });
    });
    return producer.id;
  }

  /** Consumes another peer's producer on this peer's receive transport, paused until resumed. */
  async consume(producer: ms.Producer, rtpCapabilities: ms.RtpCapabilities): Promise<ConsumerInfo> {
    this.#assertOpen();
    const recv = [...this.#transports.values()].find((t) => t.direction === 'recv');
    if (!recv) throw errors.conflict('Create a recv transport before consuming.');
    if (!this.#router.canConsume({ producerId: producer.id, rtpCapabilities })) {
      throw errors.validation('Your RTP capabilities cannot receive that producer.');
    }
    const consumer = await recv.transport
      .consume({ producerId: producer.id, rtpCapabilities, paused: true, appData: { userId: this.userId } })
      .catch(rethrowAsValidation);
    if (this.#closed) {
      consumer.close();
      throw errors.notFound('You are not in a voice channel.');
    }
    this.#consumers.set(consumer.id, { consumer, wanted: false });
    consumer.observer.once('close', () => this.#consumers.delete(consumer.id));
    return {
      consumer_id: consumer.id,
      producer_id: producer.id,
      kind: consumer.kind,
      rtp_parameters: consumer.rtpParameters,
    };
  }

  async resumeConsumer(consumerId: string): Promise<void> {
    this.#assertOpen();
    const owned = this.#consumers.get(consumerId);
    if (!owned) throw errors.notFound('No such consumer.');
    owned.wanted = true;
    if (!this.#deafened) await owned.consumer.resume();
  }

  async setMuted(muted: boolean): Promise<void> {
    this.#assertOpen();
    this.#muted = muted;
    await this.#applyProducerPause();
    this.emit('state-changed', this.state);
  }

  async setServerMuted(muted: boolean): Promise<void> {
    this.#assertOpen();
    this.#serverMuted = muted;
    await this.#applyProducerPause();
    this.emit('state-changed', this.state);
  }

  async setDeafened(deafened: boolean): Promise<void> {
    this.#assertOpen();
    this.#deafened = deafened;
    await Promise.all(
      [...this.#consumers.values()].map(({ consumer, wanted }) =>
        deafened || !wanted ? consumer.pause() : consumer.resume(),
      ),
    );
    this.emit('state-changed', this.state);
  }

  /** Closes this peer's producers (it lost the right to speak); its transports stay. */
  closeProducers(): number {
    const producers = [...this.#producers.values()];
    for (const p of producers) p.close();
    return producers.length;
  }

  /** Closes every transport (and so every producer and consumer). Idempotent. */
  close(reason: LeaveReason): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const { transport } of [...this.#transports.values()]) transport.close();
    this.#transports.clear();
    this.#producers.clear();
    this.#consumers.clear();
    this.emit('closed', reason);
  }

  #silenced(): boolean {
    return this.#muted || this.#serverMuted;
  }

  async #applyProducerPause(): Promise<void> {
    const pause = this.#silenced();
    await Promise.all([...this.#producers.values()].map((p) => (pause ? p.pause() : p.resume())));
  }

  #ownTransport(transportId: string): OwnedTransport {
    this.#assertOpen();
    const owned = this.#transports.get(transportId);
    if (!owned) throw errors.notFound('No such transport.');
    return owned;
  }

  #assertOpen(): void {
    if (this.#closed) throw errors.notFound('You are not in a voice channel.');
  }
}

/**
 * mediasoup rejects malformed client parameters (rtpParameters, dtlsParameters) with TypeError or
 * its own errors; those are the client's fault, so they answer VALIDATION_FAILED, not INTERNAL.
 */
function rethrowAsValidation(err: unknown): never {
  const e = err as Error;
  if (e instanceof TypeError || e?.name === 'TypeError' || e?.name === 'UnsupportedError') {
    throw errors.validation(`Invalid media parameters: ${e.message.split('\n')[0]?.slice(0, 200)}`);
  }
  throw err;
}
