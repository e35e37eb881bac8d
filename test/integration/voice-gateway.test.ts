/**
 * Voice over the real gateway (DESIGN.md §8): two real WebRTC clients (libwebrtc through @roamhq/wrtc,
 * mediasoup-client) signal with the voice ops on real sockets; one sends a tone, the other decodes
 * non-silent audio from the RTP it receives. Channel viewers see voice_user_joined/left,
 * voice_new_producer/producer_closed and voice_state_update; `ready` carries voice_states; leaving,
 * or closing the socket, leaves no transport on the server. A killed worker tells its users
 * (voice_user_left, reason worker-died) and a new worker serves the next join with real audio.
 */
import { once } from 'node:events';
import { afterAll, describe, expect, it } from 'vitest';
import { seedGuild } from '../support/guilds.js';
import { useTestServer } from '../support/server.js';
import { gatewaySignal, VoiceTestClient, voiceOp } from '../support/voice-client.js';
import { GatewayClient } from '../support/ws.js';

const VOICE_ENV = {
  VOICECHAT_VOICE: 'on',
  VOICECHAT_RTC_PORT: '0',
  VOICECHAT_RTC_LISTEN_IP: '127.0.0.1',
  VOICECHAT_RTC_WORKERS: '1',
};

describe('voice signalling over the gateway with real WebRTC clients', () => {
  const server = useTestServer(VOICE_ENV);
  const sockets: GatewayClient[] = [];
  const media: VoiceTestClient[] = [];
  afterAll(() => {
    for (const m of media) m.close();
    for (const s of sockets) s.close();
  });
  const connect = async (token: string) => {
    const { client, ready } = await GatewayClient.ready(server.wsUrl, token);
    sockets.push(client);
    return { client, ready };
  };
  const transportsOnServer = async () => {
    const slot = server.ctx.voice.pool?.slots()[0];
    return (await slot?.webRtcServer.dump())?.webRtcTransportIds ?? [];
  };

  it('carries a tone between two clients, tells viewers, shows voice_states, and leaves nothing behind', async () => {
    const g = await seedGuild(server);
    const ch = g.voiceChannelId;
    const { client: watcher } = await connect(g.admin.accessToken);
    const { client: aliceWs, ready: aliceReady } = await connect(g.owner.accessToken);
    const { client: bobWs } = await connect(g.member.accessToken);
    expect(aliceReady.data.voice_states).toEqual([]);

    const alice = new VoiceTestClient(gatewaySignal(aliceWs, ch));
    const bob = new VoiceTestClient(gatewaySignal(bobWs, ch));
    media.push(alice, bob);
    const a = await alice.join();
    expect(a.participants).toEqual([]);
    expect((a.router_rtp_capabilities as { codecs: { mimeType: string }[] }).codecs[0]?.mimeType).toBe('audio/opus');
    await watcher.event('voice_user_joined', (d) => d.user_id === g.owner.id);
    expect(watcher.events('voice_user_joined').at(-1)?.data).toEqual({
      channel_id: ch,
      user_id: g.owner.id,
      muted: false,
      deafened: false,
      server_muted: false,
    });

    const producerId = await alice.sendTone();
    expect((await watcher.event('voice_new_producer')).data).toEqual({
      channel_id: ch,
      user_id: g.owner.id,
      producer_id: producerId,
    });
    const b = await bob.join();
    expect(b.participants).toEqual([
      { user_id: g.owner.id, muted: false, deafened: false, server_muted: false, producer_ids: [producerId] },
    ]);
    const consumerId = await bob.receive(producerId);
    expect(await bob.heard(consumerId)).toBeGreaterThan(500);

    // A new connection's ready lists who is in voice, in the channels it may see.
    const { client: late, ready: lateReady } = await connect(g.moderator.accessToken);
    expect(lateReady.data.voice_states).toEqual(
      expect.arrayContaining([
        { channel_id: ch, user_id: g.owner.id, muted: false, deafened: false, server_muted: false },
        { channel_id: ch, user_id: g.member.id, muted: false, deafened: false, server_muted: false },
      ]),
    );
    expect(lateReady.data.voice_states).toHaveLength(2);
    late.close();

    // Self mute: the state goes out, and the media stops in the worker.
    await voiceOp(aliceWs, 'voice_mute');
    expect((await watcher.event('voice_state_update', (d) => d.muted === true)).data).toEqual({
      channel_id: ch,
      user_id: g.owner.id,
      muted: true,
      deafened: false,
      server_muted: false,
    });
    await new Promise((r) => setTimeout(r, 300));
    expect(await bob.loudestDuring(consumerId, 500)).toBeLessThan(100);
    await voiceOp(aliceWs, 'voice_unmute');
    expect(await bob.heard(consumerId)).toBeGreaterThan(500);
    expect(await transportsOnServer()).toHaveLength(2);
    expect(server.ctx.voice.stats()).toMatchObject({ peers: 2, transports: 2, producers: 1, consumers: 1 });

    // voice_leave: the others learn of the producer's end and the departure; the transports are gone.
    expect(await voiceOp(aliceWs, 'voice_leave')).toEqual({});
    expect((await watcher.event('voice_producer_closed')).data).toEqual({
      channel_id: ch,
      user_id: g.owner.id,
      producer_id: producerId,
    });
    expect((await watcher.event('voice_user_left', (d) => d.user_id === g.owner.id)).data).toEqual({
      channel_id: ch,
      user_id: g.owner.id,
      reason: 'left',
    });
    // Closing the socket leaves voice too.
    bobWs.close();
    expect((await watcher.event('voice_user_left', (d) => d.user_id === g.member.id)).data.reason).toBe('disconnected');
    expect(server.ctx.voice.stats()).toEqual({ rooms: 0, peers: 0, transports: 0, producers: 0, consumers: 0 });
    expect(await transportsOnServer()).toEqual([]);

    // Joins and leaves are in the audit log.
    const rows = await server.db('audit_log').whereIn('action', ['voice.join', 'voice.leave']).where('resource_id', ch);
    expect(
      rows
        .filter((r) => r.action === 'voice.join')
        .map((r) => r.user_id)
        .sort(),
    ).toEqual([g.owner.id, g.member.id].sort());
    await expect
      .poll(async () => (await server.db('audit_log').where({ action: 'voice.leave', resource_id: ch })).length)
      .toBe(2);
  });

  it('a killed worker: its users get voice_user_left (worker-died) and a new worker serves their rejoin', async () => {
    const g = await seedGuild(server);
    const ch = g.voiceChannelId;
    const { client: carolWs } = await connect(g.owner.accessToken);
    const { client: daveWs } = await connect(g.member.accessToken);
    const carol = new VoiceTestClient(gatewaySignal(carolWs, ch));
    media.push(carol);
    await carol.join();
    await carol.sendTone();
    const pool = server.ctx.voice.pool;
    const before = pool?.slots()[0];
    expect(before).toBeDefined();
    const replaced = once(pool as NonNullable<typeof pool>, 'worker-replaced');
    process.kill(before?.worker.pid as number, 'SIGKILL');
    const left = await carolWs.event('voice_user_left', (d) => d.user_id === g.owner.id);
    expect(left.data).toEqual({ channel_id: ch, user_id: g.owner.id, reason: 'worker-died' });
    // Her session is gone: ops on it are NOT_FOUND (or VOICE_UNAVAILABLE until the new worker runs).
    const stale = await carolWs.request('voice_create_transport', { direction: 'recv' });
    expect(['NOT_FOUND', 'VOICE_UNAVAILABLE']).toContain(stale.error?.code);
    await replaced;
    expect(pool?.slots()[0]?.worker.pid).not.toBe(before?.worker.pid);
    carol.close();

    // Rejoin on the new worker (after the join rate limit's second) and hear each other again.
    await new Promise((r) => setTimeout(r, 1100));
    const carol2 = new VoiceTestClient(gatewaySignal(carolWs, ch));
    const dave = new VoiceTestClient(gatewaySignal(daveWs, ch));
    media.push(carol2, dave);
    await carol2.join();
    const producerId = await carol2.sendTone();
    await dave.join();
    const consumerId = await dave.receive(producerId);
    expect(await dave.heard(consumerId)).toBeGreaterThan(500);
  });
});
