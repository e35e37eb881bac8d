/**
 * The gateway driven by the real REST API (issue 5 "tests that must exist"): messages posted, edited
 * and deleted over REST arrive live; a user without VIEW_CHANNEL never receives them; kick, ban and
 * role changes made over REST stop delivery at once; logout-all and password change close the
 * affected sockets with 4001. Absence is asserted after a later barrier event, never by sleeping.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { P, toWire } from '../../src/access/permissions.js';
import { api, createSession, createUser } from '../support/factories.js';
import { type GuildFixture, joinGuild, ok, seedGuild } from '../support/guilds.js';
import { useTestServer } from '../support/server.js';
import { GatewayClient } from '../support/ws.js';

describe('gateway driven by REST', () => {
  let g: GuildFixture;
  const post = (channelId: string, user: { headers: Record<string, string> }, content: string) =>
    ok(api(server, 'POST', `/api/channels/${channelId}/messages`, { user, body: { content } }), 201);

  const server = useTestServer({ VOICECHAT_RATE_LIMIT_SCALE: '100' });
  beforeAll(async () => {
    g = await seedGuild(server);
  });

  it('delivers message_new, message_edit and message_delete posted over REST', async () => {
    const reader = await GatewayClient.ready(server.wsUrl, g.member.accessToken);
    const sent = await post(g.textChannelId, g.owner, 'hello over REST');
    const got = await reader.client.event('message_new', (d) => d.id === sent.id);
    expect(got.data).toEqual(sent);

    const edited = await ok(
      api(server, 'PATCH', `/api/messages/${sent.id}`, { user: g.owner, body: { content: 'edited' } }),
    );
    expect((await reader.client.event('message_edit', (d) => d.id === sent.id)).data).toEqual(edited);

    await ok(api(server, 'DELETE', `/api/messages/${sent.id}`, { user: g.owner }), 204);
    const del = await reader.client.event('message_delete', (d) => d.id === sent.id);
    expect(del.data.id).toBe(sent.id);
    expect(del.data.content).toBe('[deleted]');
    reader.client.close();
  });

  it('never delivers a channel to a member without VIEW_CHANNEL', async () => {
    const staff = await ok(
      api(server, 'POST', `/api/guilds/${g.guildId}/channels`, {
        user: g.owner,
        body: { name: 'staff', type: 'text' },
      }),
      201,
    );
    await ok(
      api(server, 'PUT', `/api/channels/${staff.id}/overrides/${g.everyoneRoleId}`, {
        user: g.owner,
        body: { allow: '0', deny: toWire(P.VIEW_CHANNEL) },
      }),
    );
    const member = await GatewayClient.ready(server.wsUrl, g.member.accessToken);
    const admin = await GatewayClient.ready(server.wsUrl, g.admin.accessToken);
    expect(JSON.stringify(member.ready.data)).not.toContain(staff.id);
    const secret = await post(staff.id, g.owner, 'staff secret');
    const barrier = await post(g.textChannelId, g.owner, 'barrier');
    await admin.client.event('message_new', (d) => d.id === secret.id);
    await member.client.event('message_new', (d) => d.id === barrier.id);
    expect(member.client.events('message_new').some((f) => f.data.id === secret.id)).toBe(false);
    expect(JSON.stringify(member.client.frames)).not.toContain('staff secret');
    member.client.close();
    admin.client.close();
  });

  it('kick over REST: the kicked socket gets one member_leave and nothing more', async () => {
    const victim = await createUser(server);
    await joinGuild(server, g.owner, g.guildId, victim);
    const v = await GatewayClient.ready(server.wsUrl, victim.accessToken);
    const o = await GatewayClient.ready(server.wsUrl, g.owner.accessToken);
    await ok(api(server, 'DELETE', `/api/guilds/${g.guildId}/members/${victim.id}`, { user: g.moderator }), 204);
    const after = await post(g.textChannelId, g.owner, 'after the kick');
    server.app.bus.publish({ kind: 'dispatch', topic: `user:${victim.id}`, type: 'barrier', data: {} });
    await o.client.event('message_new', (d) => d.id === after.id);
    await v.client.event('barrier');
    expect(v.client.events('message_new').some((f) => f.data.id === after.id)).toBe(false);
    const leaves = v.client.events('member_leave');
    expect(leaves).toHaveLength(1);
    expect(leaves[0]?.data).toMatchObject({ guild_id: g.guildId, user_id: victim.id });
    v.client.close();
    o.client.close();
  });

  it('ban over REST: the banned socket stops receiving at once', async () => {
    const victim = await createUser(server);
    await joinGuild(server, g.owner, g.guildId, victim);
    const v = await GatewayClient.ready(server.wsUrl, victim.accessToken);
    await ok(api(server, 'PUT', `/api/guilds/${g.guildId}/bans/${victim.id}`, { user: g.moderator, body: {} }), 204);
    const after = await post(g.textChannelId, g.owner, 'after the ban');
    server.app.bus.publish({ kind: 'dispatch', topic: `user:${victim.id}`, type: 'barrier', data: {} });
    await v.client.event('barrier');
    expect(v.client.events('message_new').some((f) => f.data.id === after.id)).toBe(false);
    expect(v.client.events('member_leave')).toHaveLength(1);
    v.client.close();
  });

  it('role change over REST: granted VIEW starts delivery, removed VIEW stops it with channel_delete', async () => {
    const vip = await ok(
      api(server, 'POST', `/api/guilds/${g.guildId}/channels`, { user: g.owner, body: { name: 'vip', type: 'text' } }),
      201,
    );
    await ok(
      api(server, 'PUT', `/api/channels/${vip.id}/overrides/${g.everyoneRoleId}`, {
        user: g.owner,
        body: { allow: '0', deny: toWire(P.VIEW_CHANNEL) },
      }),
    );
    await ok(
      api(server, 'PUT', `/api/channels/${vip.id}/overrides/${g.lowRoleId}`, {
        user: g.owner,
        body: { allow: toWire(P.VIEW_CHANNEL), deny: '0' },
      }),
    );
    const m = await GatewayClient.ready(server.wsUrl, g.member.accessToken);
    await ok(
      api(server, 'PUT', `/api/guilds/${g.guildId}/members/${g.member.id}/roles/${g.lowRoleId}`, { user: g.owner }),
      204,
    );
    const one = await post(vip.id, g.owner, 'vip 1');
    await m.client.event('message_new', (d) => d.id === one.id);

    await ok(
      api(server, 'DELETE', `/api/guilds/${g.guildId}/members/${g.member.id}/roles/${g.lowRoleId}`, { user: g.owner }),
      204,
    );
    const two = await post(vip.id, g.owner, 'vip 2');
    const barrier = await post(g.textChannelId, g.owner, 'barrier 2');
    await m.client.event('message_new', (d) => d.id === barrier.id);
    expect(m.client.events('message_new').some((f) => f.data.id === two.id)).toBe(false);
    expect((await m.client.event('channel_delete', (d) => d.id === vip.id)).data.guild_id).toBe(g.guildId);
    m.client.close();
  });

  it('a channel created over REST is delivered to members, with its first message', async () => {
    const m = await GatewayClient.ready(server.wsUrl, g.member.accessToken);
    const created = await ok(
      api(server, 'POST', `/api/guilds/${g.guildId}/channels`, { user: g.owner, body: { name: 'new', type: 'text' } }),
      201,
    );
    await m.client.event('channel_create', (d) => d.id === created.id);
    const first = await post(created.id, g.owner, 'first');
    await m.client.event('message_new', (d) => d.id === first.id);
    m.client.close();
  });

  it('logout-all and password change close the affected sockets with 4001', async () => {
    const u = await createUser(server);
    const second = await createSession(server, u.id);
    const a = await GatewayClient.ready(server.wsUrl, u.accessToken);
    const b = await GatewayClient.ready(server.wsUrl, second.accessToken);
    await ok(
      api(server, 'POST', '/auth/me/password', {
        user: u,
        body: { current_password: u.password, new_password: 'another long password 2' },
      }),
      204,
    );
    await b.client.event('session_revoked');
    expect((await b.client.closed).code).toBe(4001);
    expect((await a.client.request('ping')).ok).toBe(true); // the caller's own session survives

    await ok(api(server, 'DELETE', '/auth/sessions', { user: u }), 204);
    await a.client.event('session_revoked');
    expect((await a.client.closed).code).toBe(4001);
  });
});
