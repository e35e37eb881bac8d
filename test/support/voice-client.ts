/**
 * A real WebRTC voice client in Node: mediasoup-client's Chrome111 handler on @roamhq/wrtc's
 * libwebrtc (RTCPeerConnection, DTLS-SRTP, ICE). Signalling is an adapter, so the same client runs
 * against the voice service directly (library tests) or over the gateway (phase 2).
 *
 * The sender feeds a 440 Hz tone through wrtc's RTCAudioSource; the receiver reads decoded PCM from
 * an RTCAudioSink and measures its loudness, so "heard something" means real Opus decoded from RTP.
 */
import wrtc from '@roamhq/wrtc';
import { Device } from 'mediasoup-client';
import type { VoiceService } from '../../src/voice/VoiceService.js';

// mediasoup-client's browser handlers use the WebRTC globals.
const g = globalThis as Record<string, unknown>;
for (const name of [
  'RTCPeerConnection',
  'RTCSessionDescription',
  'RTCIceCandidate',
  'MediaStream',
  'MediaStreamTrack',
]) {
  g[name] ??= (wrtc as unknown as Record<string, unknown>)[name];
}

/** What the client needs from the server, in the contract's wire shapes (DESIGN.md §8). */
export interface VoiceSignal {
  join(): Promise<{ router_rtp_capabilities: unknown; ice_servers: unknown[]; participants: unknown[] }>;
  createTransport(direction: 'send' | 'recv'): Promise<{
    transport_id: string;
    ice_parameters: unknown;
    ice_candidates: unknown[];
    dtls_parameters: unknown;
  }>;
  connectTransport(transportId: string, dtlsParameters: unknown): Promise<void>;
  produce(transportId: string, kind: 'audio', rtpParameters: unknown): Promise<{ producer_id: string }>;
  consume(
    producerId: string,
    rtpCapabilities: unknown,
  ): Promise<{ consumer_id: string; producer_id: string; kind: string; rtp_parameters: unknown }>;
  resumeConsumer(consumerId: string): Promise<void>;
}

export interface VoiceClientOptions {
  /** e.g. 'relay' to force TURN. */
  iceTransportPolicy?: 'all' | 'relay';
  /** Overrides the ICE servers from the join reply. */
  iceServers?: unknown[];
}

/** mediasoup-client's DOM-typed objects (this project compiles without lib.dom). */
type Any = any;

export class VoiceTestClient {
  readonly #signal: VoiceSignal;
  readonly #opts: VoiceClientOptions;
  #device: Any;
  #send: Any;
  #recv: Any;
  #recvOpening: Promise<Any> | undefined;
  #iceServers: unknown[] = [];
  #toneTimer: NodeJS.Timeout | undefined;
  #sinks: Any[] = [];
  /** Peak RMS of received audio per consumer id. */
  readonly loudness = new Map<string, number>();
  readonly frames = new Map<string, number>();

  constructor(signal: VoiceSignal, opts: VoiceClientOptions = {}) {
    this.#signal = signal;
    this.#opts = opts;
  }

  async join(): Promise<Awaited<ReturnType<VoiceSignal['join']>>> {
    const reply = await this.#signal.join();
    this.#iceServers = this.#opts.iceServers ?? reply.ice_servers;
    this.#device = new Device({ handlerName: 'Chrome111' });
    await this.#device.load({ routerRtpCapabilities: reply.router_rtp_capabilities });
    return reply;
  }

  async #transport(direction: 'send' | 'recv'): Promise<Any> {
    const info = await this.#signal.createTransport(direction);
    const params = {
      id: info.transport_id,
      iceParameters: info.ice_parameters,
      iceCandidates: info.ice_candidates,
      dtlsParameters: info.dtls_parameters,
      iceServers: this.#iceServers,
      ...(this.#opts.iceTransportPolicy ? { iceTransportPolicy: this.#opts.iceTransportPolicy } : {}),
    };
    const transport =
      direction === 'send' ? this.#device.createSendTransport(params) : this.#device.createRecvTransport(params);
    transport.on('connect', ({ dtlsParameters }: Any, ok: () => void, fail: (e: Error) => void) => {
      this.#signal.connectTransport(info.transport_id, dtlsParameters).then(ok, fail);
    });
    if (direction === 'send') {
      transport.on('produce', ({ kind, rtpParameters }: Any, ok: (r: { id: string }) => void, fail: Any) => {
        this.#signal.produce(info.transport_id, kind, rtpParameters).then((r) => ok({ id: r.producer_id }), fail);
      });
    }
    return transport;
  }

  /** Sends a continuous 440 Hz tone; resolves with the producer id. */
  async sendTone(): Promise<string> {
    this.#send ??= await this.#transport('send');
    const source = new wrtc.nonstandard.RTCAudioSource();
    const track = source.createTrack();
    const sampleRate = 48000;
    const frame = 480;
    let t = 0;
    this.#toneTimer = setInterval(() => {
      const samples = new Int16Array(frame);
      for (let i = 0; i < frame; i++, t++)
        samples[i] = Math.round(8000 * Math.sin((2 * Math.PI * 440 * t) / sampleRate));
      source.onData({ samples, sampleRate, bitsPerSample: 16, channelCount: 1, numberOfFrames: frame });
    }, 10);
    const producer = await this.#send.produce({ track });
    return producer.id as string;
  }

  /** Consumes a producer, resumes it and records the loudness of what arrives. */
  async receive(producerId: string): Promise<string> {
    // One recv transport, also when several producers are consumed at once.
    this.#recvOpening ??= this.#transport('recv');
    this.#recv = await this.#recvOpening;
    const data = await this.#signal.consume(producerId, this.#device.rtpCapabilities);
    const consumer = await this.#recv.consume({
      id: data.consumer_id,
      producerId: data.producer_id,
      kind: data.kind,
      rtpParameters: data.rtp_parameters,
    });
    const sink = new wrtc.nonstandard.RTCAudioSink(consumer.track);
    this.#sinks.push(sink);
    this.loudness.set(consumer.id, 0);
    this.frames.set(consumer.id, 0);
    sink.ondata = (d: { samples: Int16Array }) => {
      let sum = 0;
      for (const s of d.samples) sum += s * s;
      const rms = Math.sqrt(sum / Math.max(1, d.samples.length));
      this.frames.set(consumer.id, (this.frames.get(consumer.id) ?? 0) + 1);
      if (rms > (this.loudness.get(consumer.id) ?? 0)) this.loudness.set(consumer.id, rms);
    };
    await this.#signal.resumeConsumer(data.consumer_id);
    return data.consumer_id;
  }

  /** Waits until a consumer has delivered audio louder than `rms` (silence decodes to ~0). */
  async heard(consumerId: string, rms = 500, timeoutMs = 10_000): Promise<number> {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      const level = this.loudness.get(consumerId) ?? 0;
      if (level > rms) return level;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(
      `no audio above RMS ${rms} within ${timeoutMs} ms (peak ${this.loudness.get(consumerId)}, frames ${this.frames.get(consumerId)})`,
    );
  }

  /** Waits `ms`, then says how loud the consumer got meanwhile (PLC fades to ~0 when RTP stops). */
  async loudestDuring(consumerId: string, ms: number): Promise<number> {
    this.loudness.set(consumerId, 0);
    await new Promise((r) => setTimeout(r, ms));
    return this.loudness.get(consumerId) ?? 0;
  }

  /** The connection state of the client's transports ('connected' once ICE + DTLS are up). */
  states(): { send?: string; recv?: string } {
    return { send: this.#send?.connectionState, recv: this.#recv?.connectionState };
  }

  close(): void {
    if (this.#toneTimer) clearInterval(this.#toneTimer);
    for (const sink of this.#sinks) sink.stop();
    this.#send?.close();
    this.#recv?.close();
  }
}

/** The signalling adapter: what the gateway ops will do for this user, minus the socket. */
export function directSignal(voice: VoiceService, userId: string, channelId: string): VoiceSignal {
  return {
    join: () => voice.join(userId, channelId),
    createTransport: (direction) => voice.createTransport(userId, direction),
    connectTransport: (id, dtls) => voice.connectTransport(userId, id, dtls as never),
    produce: (id, kind, rtp) => voice.produce(userId, id, kind, rtp as never),
    consume: (producerId, caps) => voice.consume(userId, producerId, caps as never),
    resumeConsumer: (id) => voice.resumeConsumer(userId, id),
  };
}

/** A refused op over the gateway: the error reply's code and message. */
export class OpError extends Error {
  readonly code: string;
  constructor(op: string, error: { code: string; message: string }) {
    super(`${op} refused: ${error.code} ${error.message}`);
    this.code = error.code;
  }
}

/** Anything that sends an op with a request_id and returns the reply frame (GatewayClient.request). */
export interface OpSender {
  request(
    type: string,
    data?: unknown,
  ): Promise<{ ok?: boolean; data?: any; error?: { code: string; message: string } }>;
}

/** Sends one op and returns its reply data, or throws OpError with the reply's code. */
export async function voiceOp<T = any>(client: OpSender, type: string, data?: unknown): Promise<T> {
  const reply = await client.request(type, data);
  if (!reply.ok) throw new OpError(type, reply.error ?? { code: 'UNKNOWN', message: 'no error in reply' });
  return reply.data as T;
}

/** The signalling adapter over the real gateway: DESIGN.md §8's ops on a real socket. */
export function gatewaySignal(client: OpSender, channelId: string, opts: { e2ee?: boolean } = {}): VoiceSignal {
  return {
    join: () => voiceOp(client, 'voice_join', { channel_id: channelId, ...(opts.e2ee ? { e2ee: true } : {}) }),
    createTransport: (direction) => voiceOp(client, 'voice_create_transport', { direction }),
    connectTransport: async (id, dtls) => {
      await voiceOp(client, 'voice_connect_transport', { transport_id: id, dtls_parameters: dtls });
    },
    produce: (id, kind, rtp) => voiceOp(client, 'voice_produce', { transport_id: id, kind, rtp_parameters: rtp }),
    consume: (producerId, caps) =>
      voiceOp(client, 'voice_consume', { producer_id: producerId, rtp_capabilities: caps }),
    resumeConsumer: async (id) => {
      await voiceOp(client, 'voice_resume_consumer', { consumer_id: id });
    },
  };
}
