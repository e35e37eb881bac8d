/**
 * Voice at the library level with real media: the voice service on real mediasoup workers, and real
 * WebRTC clients (libwebrtc through @roamhq/wrtc, mediasoup-client) connecting over loopback through
 * the WebRtcServer's one port. The gateway signalling on top comes in phase 2; here the client's
 * signalling adapter calls the service directly, as that layer will.
 */
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import type { AppError } from '../../src/errors.js';
import { createLogger } from '../../src/logger.js';
import { VoiceService, type VoiceServiceEvents } from '../../src/voice/VoiceService.js';
import { directSignal, VoiceTestClient } from '../support/voice-client.js';

const config = loadConfig({
  env: { VOICECHAT_RTC_PORT: '0', VOICECHAT_RTC_LISTEN_IP: '127.0.0.1', VOICECHAT_RTC_WORKERS: '1' },
});

const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => 'resolved',
    (e: AppError) => e.code,
  );

describe('voice rooms with real WebRTC clients', () => {
  let voice: VoiceService;
  const clients: VoiceTestClient[] = [];
  const client = (userId: string, channelId: string) => {
    const c = new VoiceTestClient(directSignal(voice, userId, channelId));
    clients.push(c);
    return c;
  };
  const events: { type: keyof VoiceServiceEvents; data: unknown }[] = [];

  beforeAll(async () => {
    voice = VoiceService.create({ config, logger: createLogger('warn') });
    for (const type of ['user-joined', 'user-left', 'new-producer', 'producer-closed', 'state-update'] as const) {
      voice.on(type, (data: unknown) => events.push({ type, data }));
    }
    expect(await voice.start()).toEqual({ available: true, workers: 1 });
  });

  afterAll(() => {
    for (const c of clients) c.close();
    voice?.close();
  });

  it('carries a tone from one peer to another, and leaving leaves no transport behind', async () => {
    const alice = client('alice', 'chan-1');
    const bob = client('bob', 'chan-1');
    const a = await alice.join();
    expect(a.participants).toEqual([]);
    const codec = (a.router_rtp_capabilities as { codecs: { mimeType: string; channels?: number }[] }).codecs[0];
    expect(codec).toMatchObject({ mimeType: 'audio/opus', channels: 2 });

    const producerId = await alice.sendTone();
    const b = await bob.join();
    expect(b.participants).toEqual([
      { user_id: 'alice', muted: false, deafened: false, server_muted: false, producer_ids: [producerId] },
    ]);
    const consumerId = await bob.receive(producerId);
    const level = await bob.heard(consumerId);
    expect(level).toBeGreaterThan(500);
    expect(bob.states()).toEqual({ recv: 'connected' });

    // Mute pauses Alice's producer in the worker: after the decoder's concealment fades, Bob hears
    // nothing; unmuted, the tone is back. Others are told of the state either way.
    await voice.setMuted('alice', true);
    await new Promise((r) => setTimeout(r, 300));
    expect(await bob.loudestDuring(consumerId, 500)).toBeLessThan(100);
    await voice.setMuted('alice', false);
    expect(await bob.heard(consumerId)).toBeGreaterThan(500);
    expect(
      events.filter((e) => e.type === 'state-update').map((e) => (e.data as { state: { muted: boolean } }).state.muted),
    ).toEqual([true, false]);

    // Server-side counters and the worker's own view agree: 2 peers, 2 transports, 1 producer, 1 consumer.
    expect(voice.stats()).toEqual({ rooms: 1, peers: 2, transports: 2, producers: 1, consumers: 1 });
    const slot = voice.pool?.slots()[0];
    expect((await slot?.webRtcServer.dump())?.webRtcTransportIds).toHaveLength(2);

    // Bob's ids are his own: Alice naming them gets NOT_FOUND, not Bob's objects.
    expect(await codeOf(voice.resumeConsumer('alice', consumerId))).toBe('NOT_FOUND');
    expect(await codeOf(voice.consume('bob', 'no-such-producer', {} as never))).toBe('NOT_FOUND');

    expect(voice.leave('alice')).toBe(true);
    expect(events).toContainEqual({ type: 'producer-closed', data: expect.anything() });
    expect(events).toContainEqual({
      type: 'user-left',
      data: { channelId: 'chan-1', userId: 'alice', reason: 'left' },
    });
    expect(voice.closePeer('bob', 'removed')).toBe(true);
    expect(voice.leave('bob')).toBe(false);
    expect(voice.stats()).toEqual({ rooms: 0, peers: 0, transports: 0, producers: 0, consumers: 0 });
    const dump = await slot?.webRtcServer.dump();
    expect(dump?.webRtcTransportIds).toEqual([]);
    expect((await slot?.worker.dump())?.routerIds).toEqual([]);
  });

  it('a killed worker: its peers are told (worker-died), a replacement serves new rooms with real audio', async () => {
    const before = voice.pool?.slots()[0];
    expect(before).toBeDefined();
    const carol = client('carol', 'chan-2');
    await carol.join();
    await carol.sendTone();
    const left = once(voice, 'user-left');
    const replaced = once(voice.pool as NonNullable<typeof voice.pool>, 'worker-replaced');
    process.kill(before?.worker.pid as number, 'SIGKILL');
    const [gone] = (await left) as VoiceServiceEvents['user-left'];
    expect(gone).toEqual({ channelId: 'chan-2', userId: 'carol', reason: 'worker-died' });
    expect(voice.channelOf('carol')).toBeUndefined();
    expect(voice.stats().peers).toBe(0);
    await replaced;
    const after = voice.pool?.slots()[0];
    expect(after?.worker.pid).not.toBe(before?.worker.pid);
    expect(voice.status).toEqual({ available: true, workers: 1 });

    const dave = client('dave', 'chan-3');
    const erin = client('erin', 'chan-3');
    await dave.join();
    const producerId = await dave.sendTone();
    await erin.join();
    const consumerId = await erin.receive(producerId);
    expect(await erin.heard(consumerId)).toBeGreaterThan(500);
  });
});
