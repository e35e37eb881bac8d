/**
 * The gateway protocol end to end on a real server with real `ws` clients: `ready`, permission-filtered
 * live delivery, ops, access changes (kick, ban, role change) taking effect at once, session
 * revocation, resume, and the per-connection limits. Events are published through the app's own bus
 * (what every REST mutation does after its commit) and state is changed with direct database writes.
 * Absence is always asserted after a barrier event that was published later, never by sleeping.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { P } from '../../src/access/permissions.js';
import type { BusMessage } from '../../src/events/bus.js';
import { newId, nowMs } from '../../src/ids.js';
import { createUser, type TestUser } from '../support/factories.js';
import {
  assignRole,
  createRole,
  createTextChannel,
  type GuildFixture,
  removeMember,
  seedGuild,
} from '../support/guilds.js';
import { useTestServer } from '../support/server.js';
import { type Frame, GatewayClient } from '../support/ws.js';

describe('gateway', () => {
  let owner: TestUser;
  let member: TestUser;
  let g: GuildFixture;
  const publish = (m: BusMessage) => server.app.bus.publish(m);
  const say = (channelId: string, content: string) =>
    publish({
      kind: 'dispatch',
      topic: `channel:${channelId}`,
      type: 'message_new',
      data: { id: newId(), channel_id: channelId, content },
    });
  const gotMessage = (c: GatewayClient, content: string) => c.event('message_new', (d) => d.content === content);
  const hasMessage = (c: GatewayClient, content: string) =>
    c.events('message_new').some((f) => f.data.content === content);

  const server = useTestServer({ VOICECHAT_RATE_LIMIT_SCALE: '100' });
  beforeAll(async () => {
    g = await seedGuild(server);
    ({ owner, member } = g);
  });

  it('sends ready first, listing only the channels the user can VIEW', async () => {
    const { client, ready } = await GatewayClient.ready(server.wsUrl, member.accessToken);
    expect(client.frames[0]?.type).toBe('ready');
    expect(typeof ready.seq).toBe('number');
    const d = ready.data;
    expect(d.user).toMatchObject({ id: member.id, username: member.username });
    expect(d.user.password_hash).toBeUndefined();
    expect(typeof d.session_id).toBe('string');
    expect(d.heartbeat_interval_ms).toBe(server.config.gatewayHeartbeatMs);
    expect(d.voice_states).toEqual([]);
    expect(d.dm_channels).toEqual([]);
    expect(d.guilds).toHaveLength(1);
    const guild = d.guilds[0];
    expect(guild).toMatchObject({ id: g.guildId, name: g.name, members_count: g.memberCount });
    expect(guild.channels.map((c: { id: string }) => c.id)).toEqual([g.textChannelId, g.voiceChannelId]);
    expect(JSON.stringify(d)).not.toContain(g.hiddenChannelId);
    expect(guild.roles.map((r: { id: string }) => r.id)).toEqual([
      g.everyoneRoleId,
      g.lowRoleId,
      g.modRoleId,
      g.adminRoleId,
    ]);

    const ownerReady = await GatewayClient.ready(server.wsUrl, owner.accessToken);
    expect(ownerReady.ready.data.guilds[0].channels.map((c: { id: string }) => c.id).sort()).toEqual(
      [g.textChannelId, g.voiceChannelId, g.hiddenChannelId].sort(),
    );
    client.close();
    ownerReady.client.close();
  });

  it('delivers events live, and never delivers a hidden channel to a user without VIEW_CHANNEL', async () => {
    const a = await GatewayClient.ready(server.wsUrl, owner.accessToken);
    const b = await GatewayClient.ready(server.wsUrl, member.accessToken);
    say(g.hiddenChannelId, 'secret plans');
    say(g.textChannelId, 'hello all'); // barrier
    await gotMessage(a.client, 'secret plans');
    const hello = await gotMessage(b.client, 'hello all');
    expect(hasMessage(b.client, 'secret plans')).toBe(false);
    expect(hello.seq).toBeGreaterThan(b.ready.seq as number);
    // seq strictly increases on each connection
    const seqs = a.client.frames.filter((f) => f.seq !== undefined).map((f) => f.seq as number);
    expect([...seqs].sort((x, y) => x - y)).toEqual(seqs);
    a.client.close();
    b.client.close();
  });

  it('answers ping with pong and a reply; typing and presence reach the others', async () => {
    const a = await GatewayClient.ready(server.wsUrl, owner.accessToken);
    const b = await GatewayClient.ready(server.wsUrl, member.accessToken);
    const pong = await b.client.request('ping');
    expect(pong).toMatchObject({ type: 'reply', ok: true, data: {} });
    expect(b.client.events('pong')).toHaveLength(1);
    b.client.send({ type: 'ping' }); // without request_id: only the pong event
    await b.client.next((f) => f.type === 'pong' && f.seq !== b.client.events('pong')[0]?.seq);

    expect((await b.client.request('typing', { channel_id: g.textChannelId })).ok).toBe(true);
    const t = await a.client.event('typing_start');
    expect(t.data).toMatchObject({ channel_id: g.textChannelId, user_id: member.id, guild_id: g.guildId });

    const hidden = await b.client.request('typing', { channel_id: g.hiddenChannelId });
    expect(hidden.error?.code).toBe('NOT_FOUND');
    const unknown = await b.client.request('typing', { channel_id: newId() });
    expect(unknown.error?.code).toBe('NOT_FOUND');

    expect((await b.client.request('presence', { status: 'dnd' })).ok).toBe(true);
    const p = await a.client.event('presence_update');
    expect(p.data).toEqual({ guild_id: g.guildId, user_id: member.id, status: 'dnd' });
    expect((await b.client.request('presence', { status: 'invisible' })).data).toEqual({ status: 'offline' });
    expect((await b.client.request('presence', { status: 'sleeping' })).error?.code).toBe('VALIDATION_FAILED');
    a.client.close();
    b.client.close();
  });

  it('refuses typing without SEND_MESSAGES', async () => {
    const readOnly = await createTextChannel(server.db, g.guildId, 'announcements');
    await server.db('channel_overrides').insert({
      channel_id: readOnly,
      role_id: g.everyoneRoleId,
      allow: '0',
      deny: P.SEND_MESSAGES.toString(),
    });
    const b = await GatewayClient.ready(server.wsUrl, member.accessToken);
    const r = await b.client.request('typing', { channel_id: readOnly });
    expect(r.error?.code).toBe('FORBIDDEN');
    b.client.close();
  });

  it('stops delivering to a kicked member at once and tells them (member_leave)', async () => {
    const victim = await createUser(server);
    await server.db('guild_members').insert({ guild_id: g.guildId, user_id: victim.id, joined_at: nowMs() });
    const a = await GatewayClient.ready(server.wsUrl, owner.accessToken);
    const v = await GatewayClient.ready(server.wsUrl, victim.accessToken);
    say(g.textChannelId, 'before kick');
    await gotMessage(v.client, 'before kick');

    await removeMember(server.db, g.guildId, victim.id);
    publish({ kind: 'access_changed', guildId: g.guildId, userIds: [victim.id] });
    say(g.textChannelId, 'after kick');
    publish({ kind: 'dispatch', topic: `user:${victim.id}`, type: 'barrier', data: {} });

    await gotMessage(a.client, 'after kick');
    await v.client.event('barrier');
    expect(hasMessage(v.client, 'after kick')).toBe(false);
    const leave = await v.client.event('member_leave');
    expect(leave.data).toEqual({ guild_id: g.guildId, user_id: victim.id });
    // typing into the old guild is refused like any unknown channel
    expect((await v.client.request('typing', { channel_id: g.textChannelId })).error?.code).toBe('NOT_FOUND');
    a.client.close();
    v.client.close();
  });

  it('stops delivering to a banned member at once (guild-wide access change)', async () => {
    const victim = await createUser(server);
    await server.db('guild_members').insert({ guild_id: g.guildId, user_id: victim.id, joined_at: nowMs() });
    const v = await GatewayClient.ready(server.wsUrl, victim.accessToken);
    const b = await GatewayClient.ready(server.wsUrl, member.accessToken);
    await server.db('bans').insert({ guild_id: g.guildId, user_id: victim.id, created_at: nowMs() });
    await removeMember(server.db, g.guildId, victim.id);
    publish({ kind: 'access_changed', guildId: g.guildId });
    say(g.textChannelId, 'after ban');
    publish({ kind: 'dispatch', topic: `user:${victim.id}`, type: 'barrier', data: {} });
    await gotMessage(b.client, 'after ban');
    await v.client.event('barrier');
    expect(hasMessage(v.client, 'after ban')).toBe(false);
    expect((await v.client.event('member_leave')).data.guild_id).toBe(g.guildId);
    v.client.close();
    b.client.close();
  });

  it('follows role changes: granting VIEW_CHANNEL subscribes, revoking it unsubscribes with a channel_delete view', async () => {
    const staffRole = await createRole(server.db, g.guildId, 0n, 1);
    await server.db('channel_overrides').insert({
      channel_id: g.hiddenChannelId,
      role_id: staffRole,
      allow: P.VIEW_CHANNEL.toString(),
      deny: '0',
    });
    const m = await createUser(server);
    await server.db('guild_members').insert({ guild_id: g.guildId, user_id: m.id, joined_at: nowMs() });
    const c = await GatewayClient.ready(server.wsUrl, m.accessToken);

    await assignRole(server.db, g.guildId, m.id, staffRole);
    publish({ kind: 'access_changed', guildId: g.guildId, userIds: [m.id] });
    say(g.hiddenChannelId, 'staff only 1');
    await gotMessage(c.client, 'staff only 1');

    await server.db('member_roles').where({ user_id: m.id, role_id: staffRole }).delete();
    publish({ kind: 'access_changed', guildId: g.guildId }); // e.g. role update: whole guild
    say(g.hiddenChannelId, 'staff only 2');
    say(g.textChannelId, 'barrier after role removal');
    await gotMessage(c.client, 'barrier after role removal');
    expect(hasMessage(c.client, 'staff only 2')).toBe(false);
    const del = await c.client.event('channel_delete');
    expect(del.data).toEqual({ id: g.hiddenChannelId, guild_id: g.guildId });
    expect(c.client.events('member_leave')).toHaveLength(0);
    c.client.close();
  });

  it('processes the bus in order: a new channel is subscribed before its first event is delivered', async () => {
    const b = await GatewayClient.ready(server.wsUrl, member.accessToken);
    const id = await createTextChannel(server.db, g.guildId, 'fresh');
    publish({ kind: 'access_changed', guildId: g.guildId });
    publish({ kind: 'dispatch', topic: `channel:${id}`, type: 'channel_create', data: { id, guild_id: g.guildId } });
    say(id, 'first in fresh');
    const created = await b.client.event('channel_create', (d) => d.id === id);
    const first = await gotMessage(b.client, 'first in fresh');
    expect(first.seq as number).toBeGreaterThan(created.seq as number);
    b.client.close();
  });

  it('sends session_revoked and closes with 4001 only the revoked sessions', async () => {
    const u = await createUser(server);
    const other = await (await import('../support/factories.js')).createSession(server, u.id);
    const c1 = await GatewayClient.ready(server.wsUrl, u.accessToken);
    const c2 = await GatewayClient.ready(server.wsUrl, other.accessToken);
    publish({ kind: 'sessions_revoked', userId: u.id, sessionIds: [u.sessionId] });
    expect((await c1.client.event('session_revoked')).type).toBe('session_revoked');
    expect((await c1.client.closed).code).toBe(4001);
    expect((await c2.client.request('ping')).ok).toBe(true);
    publish({ kind: 'sessions_revoked', userId: u.id, sessionIds: 'all', exceptSessionId: u.sessionId });
    expect((await c2.client.closed).code).toBe(4001);
  });

  it('resumes exactly the missed events, in order, and only those the user may view', async () => {
    const first = await GatewayClient.ready(server.wsUrl, member.accessToken);
    say(g.textChannelId, 'seen 1');
    const seen = await gotMessage(first.client, 'seen 1');
    first.client.close();
    await first.client.closed;

    say(g.textChannelId, 'missed 1');
    say(g.hiddenChannelId, 'missed hidden');
    say(g.textChannelId, 'missed 2');

    const second = await GatewayClient.ready(server.wsUrl, member.accessToken);
    const reply = await second.client.request('resume', {
      session_id: first.ready.data.session_id,
      seq: seen.seq,
    });
    expect(reply.ok).toBe(true);
    expect(reply.data).toEqual({ replayed: 2 });
    const replayed = second.client.events('message_new').map((f) => f.data.content);
    expect(replayed).toEqual(['missed 1', 'missed 2']);
    const seqs = second.client.events('message_new').map((f) => f.seq as number);
    expect(seqs[0]).toBeGreaterThan(seen.seq as number);
    expect(seqs[1]).toBeGreaterThan(seqs[0] as number);

    // A session resumes once.
    const again = await second.client.request('resume', { session_id: first.ready.data.session_id, seq: seen.seq });
    expect(again.error?.code).toBe('RESUME_FAILED');
    second.client.close();
  });

  it('answers a stale or foreign resume with resume_failed and a fresh ready', async () => {
    const c = await GatewayClient.ready(server.wsUrl, member.accessToken);
    const r = await c.client.request('resume', { session_id: 'no-such-session', seq: 1 });
    expect(r.ok).toBe(false);
    expect(r.error?.code).toBe('RESUME_FAILED');
    await c.client.event('resume_failed');
    const readies = c.client.events('ready');
    expect(readies).toHaveLength(2);
    expect(readies[1]?.data.guilds[0].id).toBe(g.guildId);

    // another user's session id never resumes
    const o = await GatewayClient.ready(server.wsUrl, owner.accessToken);
    o.client.close();
    await o.client.closed;
    const stolen = await c.client.request('resume', { session_id: o.ready.data.session_id, seq: o.ready.seq });
    expect(stolen.error?.code).toBe('RESUME_FAILED');
    // a seq from the future never resumes
    const d = await GatewayClient.ready(server.wsUrl, member.accessToken);
    d.client.close();
    await d.client.closed;
    const future = await c.client.request('resume', { session_id: d.ready.data.session_id, seq: 10 ** 12 });
    expect(future.error?.code).toBe('RESUME_FAILED');
    c.client.close();
  });

  it('answers malformed frames with error replies and closes with 4002 after 10', async () => {
    const c = await GatewayClient.ready(server.wsUrl, member.accessToken);
    c.client.send('{not json');
    const bad = await c.client.next((f) => f.type === 'reply');
    expect(bad).toMatchObject({ ok: false, request_id: null, error: { code: 'INVALID_JSON' } });
    c.client.send({ type: 'fly', request_id: 'x1' });
    expect((await c.client.next((f) => f.request_id === 'x1')).error?.code).toBe('UNKNOWN_OP');
    c.client.send({ type: 'typing', request_id: 'x2', data: { channel_id: 42 } });
    expect((await c.client.next((f) => f.request_id === 'x2')).error?.code).toBe('VALIDATION_FAILED');
    c.client.send(Buffer.from([1, 2, 3]));
    expect((await c.client.next((f: Frame) => f.error?.code === 'BINARY_NOT_ACCEPTED')).ok).toBe(false);
    expect((await c.client.request('ping')).ok).toBe(true); // still open after 4
    for (let i = 0; i < 6; i++) c.client.send('[');
    expect((await c.client.closed).code).toBe(4002);
  });

  it('closes a connection that sends a frame over 64 KiB, and keeps serving others', async () => {
    const c = await GatewayClient.ready(server.wsUrl, member.accessToken);
    const other = await GatewayClient.ready(server.wsUrl, owner.accessToken);
    c.client.send(JSON.stringify({ type: 'ping', data: { pad: 'x'.repeat(70 * 1024) } }));
    const closed = await c.client.closed;
    expect([1006, 1009]).toContain(closed.code);
    expect((await other.client.request('ping')).ok).toBe(true);
    other.client.close();
  });

  it('reports gateway metrics', async () => {
    const res = await fetch(`${server.url}/metrics`);
    const text = await res.text();
    expect(text).toMatch(/voicechat_gateway_events_total \d+/);
    expect(text).toMatch(/voicechat_gateway_connections \d+/);
    expect(text).toContain('voicechat_gateway_slow_consumers_total');
  });
});

describe('gateway op rate limit', () => {
  const server = useTestServer();

  it('allows 120 ops per minute per connection, then closes with 4029', async () => {
    const u = await createUser(server);
    const c = await GatewayClient.ready(server.wsUrl, u.accessToken);
    for (let i = 0; i < 120; i++) c.client.send({ type: 'ping', request_id: `p${i}` });
    await c.client.next((f) => f.request_id === 'p119');
    expect(c.client.frames.filter((f) => f.type === 'reply' && f.ok)).toHaveLength(120);
    c.client.send({ type: 'ping', request_id: 'p120' });
    expect((await c.client.closed).code).toBe(4029);
    expect(c.client.frames.some((f) => f.request_id === 'p120')).toBe(false);
  });
});
