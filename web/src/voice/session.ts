/**
 * One voice connection (DESIGN.md §8) with mediasoup-client: join, a send transport with this
 * browser's microphone, a receive transport with one consumer per remote producer, and the audio
 * graph that plays them (per-user gain, output device, levels for the speaking indicator). Loaded as
 * its own chunk when the user first joins voice; the signals and UI around it live in state/voice.ts.
 *
 * With end-to-end encrypted voice, every outgoing Opus frame passes a FrameEncryptor and every
 * incoming one the FrameDecryptor of its sender (lib/sframe.ts) through encoded insertable streams;
 * the keys are handed in from outside (they travel through Olm).
 */
import { Device, type types } from 'mediasoup-client';
import { api } from '../lib/api';
import {
  attachTransform,
  decryptingTransform,
  encryptingTransform,
  FrameDecryptor,
  FrameEncryptor,
  insertableStreamsSupported,
} from '../lib/sframe';

export interface Signaller {
  send(type: string, data: Record<string, unknown>, reply: true): Promise<any>;
}

export interface Participant {
  user_id: string;
  muted?: boolean;
  deafened?: boolean;
  server_muted?: boolean;
  producer_ids?: string[];
}

export interface SessionOptions {
  channelId: string;
  e2ee: boolean;
  inputDeviceId?: string;
  outputDeviceId?: string;
  /** Per-user playback gain (1 = as sent). */
  volumeOf(userId: string): number;
  /** The session broke (transport failed, the server dropped us): the owner rejoins. */
  onLost(reason: string): void;
  /** The microphone could not be opened: we stay in listening only. */
  onMicError(message: string): void;
}

interface Remote {
  userId: string;
  consumer: types.Consumer;
  el: HTMLAudioElement;
  source: MediaStreamAudioSourceNode;
  gain: GainNode;
  analyser: AnalyserNode;
}

const LEVEL_BUF = new Float32Array(1024);

function rms(analyser: AnalyserNode): number {
  analyser.getFloatTimeDomainData(LEVEL_BUF);
  let s = 0;
  for (const x of LEVEL_BUF) s += x * x;
  return Math.sqrt(s / LEVEL_BUF.length);
}

export function micErrorMessage(e: unknown): string {
  const name = (e as { name?: string })?.name;
  if (name === 'NotAllowedError' || name === 'SecurityError')
    return 'Microphone permission was denied, so you can listen but not talk. Allow the microphone for this site in your browser, then rejoin.';
  if (name === 'NotFoundError' || name === 'OverconstrainedError')
    return 'No microphone was found, so you can listen but not talk.';
  if (name === 'NotReadableError')
    return 'The microphone is in use by another program, so you can listen but not talk.';
  return 'The microphone could not be opened, so you can listen but not talk.';
}

export class VoiceSession {
  readonly channelId: string;
  readonly e2ee: boolean;
  readonly #sig: Signaller;
  readonly #opts: SessionOptions;
  #device: Device | undefined;
  #send: types.Transport | undefined;
  #recv: types.Transport | undefined;
  #producer: types.Producer | undefined;
  #mic: MediaStream | undefined;
  #micAnalyser: AnalyserNode | undefined;
  #micSource: MediaStreamAudioSourceNode | undefined;
  readonly #ctx: AudioContext;
  readonly #master: GainNode;
  readonly #remotes = new Map<string, Remote>();
  /** producer id → user id, for producers not consumed yet or being consumed. */
  readonly #pending = new Map<string, string>();
  #closed = false;
  #muted = false;
  #deafened = false;
  readonly encryptor = new FrameEncryptor();
  readonly #decryptors = new Map<string, FrameDecryptor>();

  private constructor(sig: Signaller, opts: SessionOptions) {
    this.#sig = sig;
    this.#opts = opts;
    this.channelId = opts.channelId;
    this.e2ee = opts.e2ee;
    this.#ctx = new AudioContext({ latencyHint: 'interactive' });
    this.#master = this.#ctx.createGain();
    this.#master.connect(this.#ctx.destination);
  }

  /** Joins the channel; throws the server's error (code on `.code`) when the join is refused. */
  static async join(
    sig: Signaller,
    opts: SessionOptions,
  ): Promise<{ session: VoiceSession; participants: Participant[] }> {
    if (opts.e2ee && !insertableStreamsSupported())
      throw Object.assign(new Error('This browser cannot encrypt voice end to end.'), { code: 'E2EE_UNSUPPORTED' });
    const s = new VoiceSession(sig, opts);
    try {
      const participants = await s.#start();
      return { session: s, participants };
    } catch (e) {
      s.close();
      throw e;
    }
  }

  async #start(): Promise<Participant[]> {
    const iceFromApi = api<{ ice_servers: RTCIceServer[] }>('GET', '/api/voice/ice-servers').catch(() => undefined);
    const joined = await this.#sig.send(
      'voice_join',
      this.e2ee ? { channel_id: this.channelId, e2ee: true } : { channel_id: this.channelId },
      true,
    );
    const iceServers: RTCIceServer[] = (await iceFromApi)?.ice_servers ?? joined.ice_servers ?? [];
    void this.#ctx.resume();
    if (this.#opts.outputDeviceId) await this.setOutputDevice(this.#opts.outputDeviceId).catch(() => {});
    const device = new Device();
    await device.load({ routerRtpCapabilities: joined.router_rtp_capabilities });
    this.#device = device;
    const additionalSettings = this.e2ee ? ({ encodedInsertableStreams: true } as RTCConfiguration) : undefined;
    const make = async (direction: 'send' | 'recv') => {
      const t = await this.#sig.send('voice_create_transport', { direction }, true);
      const opts = {
        id: t.transport_id,
        iceParameters: t.ice_parameters,
        iceCandidates: t.ice_candidates,
        dtlsParameters: t.dtls_parameters,
        iceServers,
        additionalSettings,
      };
      const transport = direction === 'send' ? device.createSendTransport(opts) : device.createRecvTransport(opts);
      transport.on('connect', ({ dtlsParameters }, ok, fail) => {
        this.#sig
          .send('voice_connect_transport', { transport_id: transport.id, dtls_parameters: dtlsParameters }, true)
          .then(() => ok(), fail);
      });
      transport.on('connectionstatechange', (state) => {
        if (state === 'failed' || state === 'closed') this.#lost(`transport ${state}`);
      });
      return transport;
    };
    this.#recv = await make('recv');
    if (device.canProduce('audio')) {
      this.#send = await make('send');
      this.#send.on('produce', ({ kind, rtpParameters }, ok, fail) => {
        this.#sig
          .send('voice_produce', { transport_id: this.#send!.id, kind, rtp_parameters: rtpParameters }, true)
          .then((r) => ok({ id: r.producer_id }), fail);
      });
      await this.#openMic(this.#opts.inputDeviceId).catch((e) => this.#opts.onMicError(micErrorMessage(e)));
    }
    const participants = (joined.participants ?? []) as Participant[];
    for (const p of participants) for (const id of p.producer_ids ?? []) void this.consume(p.user_id, id);
    return participants;
  }

  async #openMic(deviceId: string | undefined): Promise<void> {
    const mic = await navigator.mediaDevices.getUserMedia({
      audio: {
        deviceId: deviceId ? { exact: deviceId } : undefined,
        echoCancellation: true,
        noiseSuppression: true,
        autoGainControl: true,
      },
    });
    if (this.#closed) {
      for (const t of mic.getTracks()) t.stop();
      return;
    }
    const track = mic.getAudioTracks()[0]!;
    this.#micSource?.disconnect();
    this.#micSource = this.#ctx.createMediaStreamSource(mic);
    this.#micAnalyser ??= this.#ctx.createAnalyser();
    this.#micAnalyser.fftSize = 1024;
    this.#micSource.connect(this.#micAnalyser);
    const old = this.#mic;
    this.#mic = mic;
    if (this.#producer) {
      await this.#producer.replaceTrack({ track });
    } else if (this.#send) {
      this.#producer = await this.#send.produce({
        track,
        codecOptions: { opusDtx: true, opusFec: true },
        stopTracks: false,
        zeroRtpOnPause: true,
      });
      if (this.e2ee && this.#producer.rtpSender)
        attachTransform(this.#producer.rtpSender, encryptingTransform(this.encryptor));
      if (this.#muted) this.#producer.pause();
    }
    for (const t of old?.getTracks() ?? []) t.stop();
  }

  get hasMic(): boolean {
    return this.#producer !== undefined;
  }

  /** Switches the microphone (the producer keeps its id; no renegotiation). */
  setInputDevice(deviceId: string): Promise<void> {
    return this.#openMic(deviceId || undefined);
  }

  async setOutputDevice(deviceId: string): Promise<void> {
    const ctx = this.#ctx as AudioContext & { setSinkId?: (id: string) => Promise<void> };
    if (typeof ctx.setSinkId === 'function') await ctx.setSinkId(deviceId);
  }

  /** Consumes a remote producer and plays it. */
  async consume(userId: string, producerId: string): Promise<void> {
    if (this.#closed || !this.#recv || !this.#device || this.#pending.has(producerId)) return;
    this.#pending.set(producerId, userId);
    try {
      const c = await this.#sig.send(
        'voice_consume',
        { producer_id: producerId, rtp_capabilities: this.#device.recvRtpCapabilities },
        true,
      );
      if (this.#closed || !this.#pending.has(producerId)) return;
      const consumer = await this.#recv.consume({
        id: c.consumer_id,
        producerId: c.producer_id,
        kind: c.kind,
        rtpParameters: c.rtp_parameters,
      });
      if (this.e2ee) attachTransform(consumer.rtpReceiver!, decryptingTransform(this.decryptorFor(userId)));
      const stream = new MediaStream([consumer.track]);
      // Chromium feeds a remote WebRTC stream into Web Audio only while a media element plays it.
      const el = new Audio();
      el.muted = true;
      el.srcObject = stream;
      void el.play().catch(() => {});
      const source = this.#ctx.createMediaStreamSource(stream);
      const gain = this.#ctx.createGain();
      gain.gain.value = this.#opts.volumeOf(userId);
      const analyser = this.#ctx.createAnalyser();
      analyser.fftSize = 1024;
      source.connect(analyser);
      source.connect(gain);
      gain.connect(this.#master);
      this.#closeRemote(producerId);
      this.#remotes.set(producerId, { userId, consumer, el, source, gain, analyser });
      await this.#sig.send('voice_resume_consumer', { consumer_id: consumer.id }, true);
    } catch {
      // The producer went away meanwhile, or we left: nothing to play.
      this.#pending.delete(producerId);
    }
  }

  /** The decryptor for a remote user's frames (created empty: nothing plays until their key arrives). */
  decryptorFor(userId: string): FrameDecryptor {
    let d = this.#decryptors.get(userId);
    if (!d) {
      d = new FrameDecryptor();
      this.#decryptors.set(userId, d);
    }
    return d;
  }

  producerClosed(producerId: string): void {
    this.#pending.delete(producerId);
    this.#closeRemote(producerId);
  }

  userLeft(userId: string): void {
    for (const [id, r] of this.#remotes) if (r.userId === userId) this.#closeRemote(id);
    for (const [id, u] of this.#pending) if (u === userId) this.#pending.delete(id);
    this.#decryptors.get(userId)?.clear();
    this.#decryptors.delete(userId);
  }

  #closeRemote(producerId: string): void {
    const r = this.#remotes.get(producerId);
    if (!r) return;
    this.#remotes.delete(producerId);
    r.consumer.close();
    r.source.disconnect();
    r.gain.disconnect();
    r.el.srcObject = null;
  }

  setVolume(userId: string, gain: number): void {
    for (const r of this.#remotes.values()) if (r.userId === userId) r.gain.gain.value = gain;
  }

  /** Local mute: the producer pauses (no RTP at all), the server is told. */
  async setMuted(muted: boolean): Promise<void> {
    this.#muted = muted;
    if (this.#producer) {
      if (muted) this.#producer.pause();
      else this.#producer.resume();
    }
    await this.#sig.send(muted ? 'voice_mute' : 'voice_unmute', {}, true).catch(() => {});
  }

  async setDeafened(deafened: boolean): Promise<void> {
    this.#deafened = deafened;
    this.#master.gain.value = deafened ? 0 : 1;
    await this.#sig.send(deafened ? 'voice_deafen' : 'voice_undeafen', {}, true).catch(() => {});
  }

  get deafened(): boolean {
    return this.#deafened;
  }

  /** RMS levels (0–1): this browser's microphone (0 while muted) and each remote user's audio. */
  levels(): { self: number; users: Record<string, number> } {
    const users: Record<string, number> = {};
    for (const r of this.#remotes.values()) users[r.userId] = Math.max(users[r.userId] ?? 0, rms(r.analyser));
    const self = this.#micAnalyser && !this.#muted && this.#producer ? rms(this.#micAnalyser) : 0;
    return { self, users };
  }

  /** Inbound RTP stats per user (packets, decoded level), for diagnostics and tests. */
  async inboundStats(): Promise<Record<string, { packets: number; audioLevel: number }>> {
    const out: Record<string, { packets: number; audioLevel: number }> = {};
    for (const r of this.#remotes.values()) {
      const stats = await r.consumer.getStats();
      stats.forEach((s: any) => {
        if (s.type === 'inbound-rtp')
          out[r.userId] = { packets: s.packetsReceived ?? 0, audioLevel: s.audioLevel ?? 0 };
      });
    }
    return out;
  }

  #lost(reason: string): void {
    if (this.#closed) return;
    this.close();
    this.#opts.onLost(reason);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Idempotent: stops the microphone, closes transports and the audio graph. Does not tell the server. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const id of [...this.#remotes.keys()]) this.#closeRemote(id);
    this.#producer?.close();
    this.#send?.close();
    this.#recv?.close();
    for (const t of this.#mic?.getTracks() ?? []) t.stop();
    this.#micSource?.disconnect();
    void this.#ctx.close().catch(() => {});
    this.encryptor.setKey(undefined);
    for (const d of this.#decryptors.values()) d.clear();
  }
}
