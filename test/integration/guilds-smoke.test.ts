/**
 * A guild's life end to end on a real server, through the public API only (REST + gateway): create
 * with its defaults, invite and join (both sides see it live), talk, moderate (the banned member's
 * socket is told and their next request refused).
 */
import { describe, expect, it } from 'vitest';
import { EVERYONE_DEFAULT, toWire } from '../../src/access/permissions.js';
import { api, createUser } from '../support/factories.js';
import { ok } from '../support/guilds.js';
import { useTestServer } from '../support/server.js';
import { GatewayClient } from '../support/ws.js';

describe('guild smoke', () => {
  const server = useTestServer({ VOICECHAT_RATE_LIMIT_SCALE: '100' });

  it('create, invite, join, talk and ban, seen live on the gateway', async () => {
    const [owner, guest] = await Promise.all([createUser(server), createUser(server)]);
    const guild = await ok(api(server, 'POST', '/api/guilds', { user: owner, body: { name: 'Smoke' } }), 201);
    expect(guild).toMatchObject({ name: 'Smoke', owner_id: owner.id });
    expect(guild.roles).toEqual([
      expect.objectContaining({ name: '@everyone', is_everyone: true, permissions: toWire(EVERYONE_DEFAULT) }),
    ]);
    expect(guild.channels.map((c: any) => [c.name, c.type])).toEqual([
      ['general', 'text'],
      ['General', 'voice'],
    ]);
    const general = guild.channels[0].id as string;

    const ownerWs = await GatewayClient.ready(server.wsUrl, owner.accessToken);
    const guestWs = await GatewayClient.ready(server.wsUrl, guest.accessToken);
    expect(guestWs.ready.data.guilds).toEqual([]);
    const invite = await ok(api(server, 'POST', `/api/guilds/${guild.id}/invites`, { user: owner, body: {} }), 201);
    expect(await ok(api(server, 'POST', `/api/invites/${invite.code}/join`, { user: guest }))).toMatchObject({
      id: guild.id,
    });
    await ownerWs.client.event('member_join', (d) => d.user.id === guest.id);

    const sent = await ok(
      api(server, 'POST', `/api/channels/${general}/messages`, { user: guest, body: { content: 'hello' } }),
      201,
    );
    expect((await ownerWs.client.event('message_new', (d) => d.id === sent.id)).data.content).toBe('hello');
    // The guest was subscribed by the join: they see their own message live too.
    await guestWs.client.event('message_new', (d) => d.id === sent.id);
    const history = await ok(api(server, 'GET', `/api/channels/${general}/messages`, { user: owner }));
    expect(history.map((m: any) => [m.id, m.author_id, m.content])).toEqual([[sent.id, guest.id, 'hello']]);

    await ok(api(server, 'PUT', `/api/guilds/${guild.id}/bans/${guest.id}`, { user: owner, body: {} }), 204);
    await guestWs.client.event('member_leave', (d) => d.guild_id === guild.id && d.user_id === guest.id);
    const refused = await api(server, 'POST', `/api/channels/${general}/messages`, {
      user: guest,
      body: { content: 'still here?' },
    });
    expect(refused.status).toBe(404);
    expect((await api(server, 'POST', `/api/invites/${invite.code}/join`, { user: guest })).status).toBe(403);
    ownerWs.client.close();
    guestWs.client.close();
  });
});
