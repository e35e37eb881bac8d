/**
 * The voice signalling attacks of SECURITY-TESTS.md and the rules of DESIGN.md §8 / issue 11 §2.3,
 * each tried over the real gateway and refused with the documented code: join without VOICE_CONNECT,
 * produce without VOICE_SPEAK, another guild's channel, another user's transport/consumer ids, a join
 * flood, user_limit, one voice channel per user, server mute without VOICE_MUTE_OTHERS; and removal
 * at once (transports closed in the worker) on kick, ban, a lost permission, a revoked session and a
 * channel switched to end-to-end encrypted voice (E2EE_REQUIRED for those who do not declare it).
 * Each refusal is paired with the allowed case, so a check that stopped working would fail here.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { P, toWire } from '../../src/access/permissions.js';
import { api } from '../support/factories.js';
import { type GuildFixture, ok, seedGuild } from '../support/guilds.js';
import { useTestServer } from '../support/server.js';
import { type Frame, GatewayClient } from '../support/ws.js';

const server = useTestServer({
  VOICECHAT_VOICE: 'on',
  VOICECHAT_RTC_PORT: '0',
  VOICECHAT_RTC_LISTEN_IP: '127.0.0.1',
  VOICECHAT_RTC_WORKERS: '1',
  // Every socket here comes from its own (forwarded) address: the per-IP upgrade limit is not under test.
  VOICECHAT_TRUSTED_PROXIES: 'loopback',
});
let addresses = 0;
const ownAddress = () => ({
  headers: { 'x-forwarded-for': `10.9.${Math.floor(++addresses / 250)}.${addresses % 250}` },
});

/** Well-formed Opus send parameters (what mediasoup-client sends for a microphone track). */
const OPUS_RTP = {
  mid: '0',
  codecs: [
    {
      mimeType: 'audio/opus',
      payloadType: 111,
      clockRate: 48000,
      channels: 2,
      parameters: { minptime: 10, useinbandfec: 1 },
      rtcpFeedback: [{ type: 'transport-cc', parameter: '' }],
    },
  ],
  headerExtensions: [],
  encodings: [{ ssrc: 11111111 }],
  rtcp: { cname: 'test', reducedSize: true },
};

const sockets: GatewayClient[] = [];
afterAll(() => {
  for (const s of sockets) s.close();
});
const connect = async (token: string) => {
  const { client } = await GatewayClient.ready(server.wsUrl, token, ownAddress());
  sockets.push(client);
  return client;
};
const code = (f: Frame) => (f.ok ? 'ok' : f.error?.code);
const join = (ws: GatewayClient, channelId: string, extra: Record<string, unknown> = {}) =>
  ws.request('voice_join', { channel_id: channelId, ...extra });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Transports of the one worker's WebRtcServer, as the worker itself reports them. */
const workerTransports = async () =>
  (await server.ctx.voice.pool?.slots()[0]?.webRtcServer.dump())?.webRtcTransportIds ?? [];

/** A user in voice with a send and a recv transport; returns the socket and transport ids. */
async function inVoice(token: string, channelId: string) {
  const ws = await connect(token);
  const joined = await join(ws, channelId);
  expect(code(joined), JSON.stringify(joined)).toBe('ok');
  const send = (await ws.request('voice_create_transport', { direction: 'send' })).data.transport_id as string;
  const recv = (await ws.request('voice_create_transport', { direction: 'recv' })).data.transport_id as string;
  return { ws, send, recv, caps: joined.data.router_rtp_capabilities };
}

const denyOnVoice = (g: GuildFixture, bits: bigint) =>
  ok(
    api(server, 'PUT', `/api/channels/${g.voiceChannelId}/overrides/${g.everyoneRoleId}`, {
      user: g.owner,
      body: { allow: '0', deny: toWire(bits) },
    }),
  );

describe('voice permissions', () => {
  it('join needs VOICE_CONNECT; produce needs VOICE_SPEAK (checked at the op, not only at join)', async () => {
    const g = await seedGuild(server);
    await denyOnVoice(g, P.VOICE_CONNECT);
    const member = await connect(g.member.accessToken);
    expect(code(await join(member, g.voiceChannelId))).toBe('FORBIDDEN');
    expect(server.ctx.voice.channelOf(g.member.id)).toBeUndefined();

    await denyOnVoice(g, P.VOICE_SPEAK);
    await sleep(1100); // the join limit: 1 per second
    const { ws, send } = await inVoice(g.member.accessToken, g.voiceChannelId);
    const refused = await ws.request('voice_produce', { transport_id: send, kind: 'audio', rtp_parameters: OPUS_RTP });
    expect(code(refused)).toBe('FORBIDDEN');
    expect(server.ctx.voice.stats().producers).toBe(0);
    // The same op succeeds once the permission is back.
    await ok(
      api(server, 'DELETE', `/api/channels/${g.voiceChannelId}/overrides/${g.everyoneRoleId}`, { user: g.owner }),
      204,
    );
    const allowed = await ws.request('voice_produce', { transport_id: send, kind: 'audio', rtp_parameters: OPUS_RTP });
    expect(code(allowed), JSON.stringify(allowed)).toBe('ok');
    expect(allowed.data.producer_id).toEqual(expect.any(String));

    // Losing VOICE_SPEAK while producing closes the producer (the user stays in the channel).
    const watcher = await connect(g.admin.accessToken);
    await denyOnVoice(g, P.VOICE_SPEAK);
    expect((await watcher.event('voice_producer_closed')).data.producer_id).toBe(allowed.data.producer_id);
    expect(server.ctx.voice.channelOf(g.member.id)).toBe(g.voiceChannelId);
    ws.close();
  });

  it("another guild's channel, a hidden or unknown channel are NOT_FOUND; a text channel is not joinable", async () => {
    const g = await seedGuild(server);
    const other = await seedGuild(server, 'Other guild');
    const member = await connect(g.member.accessToken);
    expect(code(await join(member, other.voiceChannelId))).toBe('NOT_FOUND');
    const outsider = await connect(g.outsider.accessToken);
    await sleep(1100);
    expect(code(await join(outsider, g.voiceChannelId))).toBe('NOT_FOUND');
    await sleep(1100);
    expect(code(await join(member, '00000000-0000-7000-8000-000000000000'))).toBe('NOT_FOUND');
    await sleep(1100);
    expect(code(await join(member, g.textChannelId))).toBe('VALIDATION_FAILED');
    const banned = await connect(g.banned.accessToken);
    expect(code(await join(banned, g.voiceChannelId))).toBe('NOT_FOUND');
    // Malformed op data never reaches the service.
    expect(code(await member.request('voice_join', { channel_id: g.voiceChannelId, extra: 1 }))).toBe(
      'VALIDATION_FAILED',
    );
    expect(code(await member.request('voice_create_transport', { direction: 'sideways' }))).toBe('VALIDATION_FAILED');
    expect(server.ctx.voice.members().filter((m) => m.guildId === g.guildId)).toEqual([]);
  });

  it("another user's transport, producer and consumer ids are NOT_FOUND; so is the session from another socket", async () => {
    const g = await seedGuild(server);
    const alice = await inVoice(g.owner.accessToken, g.voiceChannelId);
    const bob = await inVoice(g.member.accessToken, g.voiceChannelId);
    const bobProducer = (
      await bob.ws.request('voice_produce', { transport_id: bob.send, kind: 'audio', rtp_parameters: OPUS_RTP })
    ).data.producer_id as string;
    const aliceConsumer = await alice.ws.request('voice_consume', {
      producer_id: bobProducer,
      rtp_capabilities: alice.caps,
    });
    expect(code(aliceConsumer), JSON.stringify(aliceConsumer)).toBe('ok');

    // Bob names Alice's objects: nothing of hers is touched.
    expect(
      code(await bob.ws.request('voice_connect_transport', { transport_id: alice.send, dtls_parameters: fakeDtls() })),
    ).toBe('NOT_FOUND');
    expect(
      code(
        await bob.ws.request('voice_produce', { transport_id: alice.send, kind: 'audio', rtp_parameters: OPUS_RTP }),
      ),
    ).toBe('NOT_FOUND');
    expect(code(await bob.ws.request('voice_resume_consumer', { consumer_id: aliceConsumer.data.consumer_id }))).toBe(
      'NOT_FOUND',
    );
    // His own producer cannot be consumed by himself; a made-up one is NOT_FOUND.
    expect(code(await bob.ws.request('voice_consume', { producer_id: bobProducer, rtp_capabilities: bob.caps }))).toBe(
      'NOT_FOUND',
    );
    // The one allowed case works: Alice resumes her own consumer.
    expect(code(await alice.ws.request('voice_resume_consumer', { consumer_id: aliceConsumer.data.consumer_id }))).toBe(
      'ok',
    );
    // Bob's second socket does not hold his voice session.
    const bobElsewhere = await connect(g.member.accessToken);
    expect(code(await bobElsewhere.request('voice_create_transport', { direction: 'send' }))).toBe('NOT_FOUND');
    expect(code(await bobElsewhere.request('voice_leave'))).toBe('NOT_FOUND');
    expect(server.ctx.voice.channelOf(g.member.id)).toBe(g.voiceChannelId);
    alice.ws.close();
    bob.ws.close();
  });
});

describe('who learns about voice', () => {
  it('voice events and ready.voice_states reach only those who may VIEW the channel', async () => {
    const g = await seedGuild(server);
    const hidden = await ok(
      api(server, 'POST', `/api/guilds/${g.guildId}/channels`, {
        user: g.owner,
        body: { name: 'Staff', type: 'voice' },
      }),
      201,
    );
    await ok(
      api(server, 'PUT', `/api/channels/${hidden.id}/overrides/${g.everyoneRoleId}`, {
        user: g.owner,
        body: { allow: '0', deny: toWire(P.VIEW_CHANNEL) },
      }),
    );
    const member = await connect(g.member.accessToken);
    const owner = await connect(g.owner.accessToken);
    expect(code(await join(owner, hidden.id))).toBe('ok');
    // Barrier: a join the member may see; everything about the hidden channel was published before it.
    const admin = await connect(g.admin.accessToken);
    expect(code(await join(admin, g.voiceChannelId))).toBe('ok');
    await member.event('voice_user_joined', (d) => d.user_id === g.admin.id);
    expect(member.frames.filter((f) => f.type.startsWith('voice_') && f.data?.channel_id === hidden.id)).toEqual([]);
    const { client: late, ready } = await GatewayClient.ready(server.wsUrl, g.member.accessToken, ownAddress());
    late.close();
    expect(ready.data.voice_states).toEqual([
      { channel_id: g.voiceChannelId, user_id: g.admin.id, muted: false, deafened: false, server_muted: false },
    ]);
    // The owner (who may view it) sees both.
    const { client: ownerLate, ready: ownerReady } = await GatewayClient.ready(
      server.wsUrl,
      g.owner.accessToken,
      ownAddress(),
    );
    ownerLate.close();
    expect(ownerReady.data.voice_states).toHaveLength(2);
    owner.close();
    admin.close();
  });
});

describe('voice abuse limits', () => {
  it('join flood: 1 per second, 5 per minute per user → RATE_LIMITED', async () => {
    const g = await seedGuild(server);
    const ws = await connect(g.member.accessToken);
    expect(code(await join(ws, g.voiceChannelId))).toBe('ok');
    const flood = await Promise.all([join(ws, g.voiceChannelId), join(ws, g.voiceChannelId)]);
    expect(flood.map(code)).toEqual(['RATE_LIMITED', 'RATE_LIMITED']);
    // Another user is not affected by this one's flood.
    const other = await connect(g.admin.accessToken);
    expect(code(await join(other, g.voiceChannelId))).toBe('ok');
    // Spaced a second apart: 5 joins fit in the minute (a refusal by the per-second limit does not use
    // the minute's budget), the 6th does not.
    const results: string[] = [];
    for (let i = 0; i < 5; i++) {
      await sleep(1050);
      results.push(code(await join(ws, g.voiceChannelId)) as string);
    }
    expect(results).toEqual(['ok', 'ok', 'ok', 'ok', 'RATE_LIMITED']);
    ws.close();
    other.close();
  }, 20_000);

  it('user_limit: a full channel refuses the next user (FORBIDDEN); one channel per user (joining another moves)', async () => {
    const g = await seedGuild(server);
    await ok(api(server, 'PATCH', `/api/channels/${g.voiceChannelId}`, { user: g.owner, body: { user_limit: 1 } }));
    const second = await ok(
      api(server, 'POST', `/api/guilds/${g.guildId}/channels`, {
        user: g.owner,
        body: { name: 'Second', type: 'voice' },
      }),
      201,
    );
    const watcher = await connect(g.admin.accessToken);
    const a = await connect(g.owner.accessToken);
    const b = await connect(g.member.accessToken);
    expect(code(await join(a, g.voiceChannelId))).toBe('ok');
    const full = await join(b, g.voiceChannelId);
    expect(code(full)).toBe('FORBIDDEN');
    expect(full.error?.message).toMatch(/full/);
    // The owner moves to the second channel: left the first (moved), freeing the seat.
    await sleep(1100);
    expect(code(await join(a, second.id))).toBe('ok');
    expect((await watcher.event('voice_user_left', (d) => d.user_id === g.owner.id)).data).toEqual({
      channel_id: g.voiceChannelId,
      user_id: g.owner.id,
      reason: 'moved',
    });
    expect(server.ctx.voice.channelOf(g.owner.id)).toBe(second.id);
    await sleep(1100);
    expect(code(await join(b, g.voiceChannelId))).toBe('ok');
    a.close();
    b.close();
  });
});

describe('removal at once', () => {
  const removedBy = async (
    what: (g: GuildFixture) => Promise<unknown>,
    opts: { expectClose?: boolean; channelGone?: boolean } = {},
  ) => {
    const g = await seedGuild(server);
    const watcher = await connect(g.owner.accessToken);
    const victim = await inVoice(g.member.accessToken, g.voiceChannelId);
    expect(await workerTransports()).toEqual(expect.arrayContaining([victim.send, victim.recv]));
    await what(g);
    // Those who still see the channel are told; so is the removed user's own socket (directly, when
    // they may no longer see the channel's topic).
    const mine = (d: { user_id: string }) => d.user_id === g.member.id;
    const left = opts.channelGone
      ? await watcher.event('channel_delete', (d) => d.id === g.voiceChannelId)
      : await watcher.event('voice_user_left', mine);
    if (!opts.channelGone) expect(left.data.channel_id).toBe(g.voiceChannelId);
    else await victim.ws.event('voice_user_left', mine);
    expect(server.ctx.voice.channelOf(g.member.id)).toBeUndefined();
    const remaining = await workerTransports();
    expect(remaining).not.toContain(victim.send);
    expect(remaining).not.toContain(victim.recv);
    if (opts.expectClose) {
      expect((await victim.ws.closed).code).toBe(4001);
      return (await watcher.event('voice_user_left', mine)).data.reason as string;
    }
    const own = await victim.ws.event('voice_user_left', mine);
    expect(own.data.channel_id).toBe(g.voiceChannelId);
    expect(victim.ws.events('voice_user_left').filter((f) => mine(f.data))).toHaveLength(1);
    expect(code(await victim.ws.request('voice_create_transport', { direction: 'send' }))).toBe('NOT_FOUND');
    victim.ws.close();
    return own.data.reason as string;
  };

  it('kick', async () => {
    expect(
      await removedBy((g) =>
        ok(api(server, 'DELETE', `/api/guilds/${g.guildId}/members/${g.member.id}`, { user: g.owner }), 204),
      ),
    ).toBe('removed');
  });
  it('ban', async () => {
    expect(
      await removedBy((g) =>
        ok(api(server, 'PUT', `/api/guilds/${g.guildId}/bans/${g.member.id}`, { user: g.owner, body: {} }), 204),
      ),
    ).toBe('removed');
  });
  it('VOICE_CONNECT taken away by a channel override', async () => {
    expect(await removedBy((g) => denyOnVoice(g, P.VOICE_CONNECT))).toBe('removed');
  });
  it('VIEW_CHANNEL taken away', async () => {
    expect(await removedBy((g) => denyOnVoice(g, P.VIEW_CHANNEL))).toBe('removed');
  });
  it('the voice channel deleted', async () => {
    expect(
      await removedBy((g) => ok(api(server, 'DELETE', `/api/channels/${g.voiceChannelId}`, { user: g.owner }), 204), {
        channelGone: true,
      }),
    ).toBe('removed');
  });
  it('session revoked (log out everywhere): the socket closes 4001 and voice is left', async () => {
    expect(
      await removedBy((g) => ok(api(server, 'DELETE', '/auth/sessions', { user: g.member }), 204), {
        expectClose: true,
      }),
    ).toBe('disconnected');
  });
});

describe('server mute', () => {
  it('needs VOICE_MUTE_OTHERS in the channel, is audited, and survives leaving and rejoining', async () => {
    const g = await seedGuild(server);
    const target = await inVoice(g.member.accessToken, g.voiceChannelId);
    const moderator = await connect(g.moderator.accessToken); // moderator bits lack VOICE_MUTE_OTHERS
    expect(code(await moderator.request('voice_server_mute', { user_id: g.member.id, muted: true }))).toBe('FORBIDDEN');
    const outsider = await connect(g.outsider.accessToken);
    expect(code(await outsider.request('voice_server_mute', { user_id: g.member.id, muted: true }))).toBe('NOT_FOUND');
    const admin = await connect(g.admin.accessToken);
    expect(code(await admin.request('voice_server_mute', { user_id: g.member.id, muted: true }))).toBe('ok');
    expect((await admin.event('voice_state_update', (d) => d.user_id === g.member.id)).data).toEqual({
      channel_id: g.voiceChannelId,
      user_id: g.member.id,
      muted: false,
      deafened: false,
      server_muted: true,
    });
    const row = await server.db('audit_log').where({ action: 'voice.server_mute', resource_id: g.member.id }).first();
    expect(row?.user_id).toBe(g.admin.id);
    expect(JSON.parse(row?.metadata)).toMatchObject({ channel_id: g.voiceChannelId, muted: true });
    // Leaving and rejoining does not lift it.
    expect(code(await target.ws.request('voice_leave'))).toBe('ok');
    await sleep(1100);
    const rejoined = await join(target.ws, g.voiceChannelId);
    expect(code(rejoined)).toBe('ok');
    expect((await admin.event('voice_user_joined', (d) => d.user_id === g.member.id)).data.server_muted).toBe(true);
    expect(code(await admin.request('voice_server_mute', { user_id: g.member.id, muted: false }))).toBe('ok');
    target.ws.close();
  });
});

describe('end-to-end encrypted voice channels (issue 15 item 3, server part)', () => {
  it('e2ee_voice: set by MANAGE_CHANNELS, shown on the channel, E2EE_REQUIRED without "e2ee": true, non-E2EE peers removed', async () => {
    const g = await seedGuild(server);
    const ch = g.voiceChannelId;
    const plain = await inVoice(g.member.accessToken, ch);
    const watcher = await connect(g.admin.accessToken);
    // A member without MANAGE_CHANNELS may not turn it on; a text channel cannot have it.
    expect(
      (await api(server, 'PATCH', `/api/channels/${ch}`, { user: g.member, body: { e2ee_voice: true } })).status,
    ).toBe(403);
    expect(
      (await api(server, 'PATCH', `/api/channels/${g.textChannelId}`, { user: g.owner, body: { e2ee_voice: true } }))
        .status,
    ).toBe(400);
    expect((await ok(api(server, 'GET', `/api/channels/${ch}`, { user: g.member }))).e2ee_voice).toBe(false);
    const updated = await ok(
      api(server, 'PATCH', `/api/channels/${ch}`, { user: g.owner, body: { e2ee_voice: true } }),
    );
    expect(updated.e2ee_voice).toBe(true);
    expect((await watcher.event('channel_update', (d) => d.id === ch)).data.e2ee_voice).toBe(true);
    expect(await server.db('audit_log').where({ action: 'channel.e2ee_voice', resource_id: ch }).first()).toBeDefined();

    // The peer that joined without E2EE is removed at once.
    expect((await watcher.event('voice_user_left', (d) => d.user_id === g.member.id)).data.reason).toBe('removed');
    expect(await workerTransports()).not.toContain(plain.send);

    await sleep(1100);
    expect(code(await join(plain.ws, ch))).toBe('E2EE_REQUIRED');
    await sleep(1100);
    expect(code(await join(plain.ws, ch, { e2ee: false }))).toBe('E2EE_REQUIRED');
    await sleep(1100);
    expect(code(await join(plain.ws, ch, { e2ee: true }))).toBe('ok');
    const { client: late, ready } = await GatewayClient.ready(server.wsUrl, g.moderator.accessToken, ownAddress());
    late.close();
    const readyChannel = ready.data.guilds[0].channels.find((c: { id: string }) => c.id === ch);
    expect(readyChannel.e2ee_voice).toBe(true);
    plain.ws.close();
  }, 15_000);
});

function fakeDtls() {
  return { role: 'client', fingerprints: [{ algorithm: 'sha-256', value: 'AA:'.repeat(31) + 'AA' }] };
}
