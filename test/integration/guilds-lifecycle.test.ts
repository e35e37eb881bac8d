/**
 * Guild lifecycle and realtime hooks over real HTTP: what a new guild contains, invites (uses and
 * expiry), bans blocking rejoin, leaving and ownership transfer, access changes taking effect at
 * once (the permission cache is invalidated by the bus), and the exact bus messages each mutation
 * publishes for the gateway.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { EVERYONE_DEFAULT, P, toWire } from '../../src/access/permissions.js';
import type { BusMessage } from '../../src/events/bus.js';
import { api, createUser, type TestUser } from '../support/factories.js';
import { type GuildFixture, joinGuild, ok, seedGuild } from '../support/guilds.js';
import { useTestServer } from '../support/server.js';

describe('guild lifecycle', () => {
  const server = useTestServer({ VOICECHAT_RATE_LIMIT_SCALE: '1000' });

  it('creates the owner membership, @everyone, #general and General voice in one go', async () => {
    const owner = await createUser(server);
    const g = await ok(api(server, 'POST', '/api/guilds', { user: owner, body: { name: '  My guild  ' } }), 201);
    expect(g).toMatchObject({ name: 'My guild', owner_id: owner.id });
    expect(g.roles).toEqual([
      expect.objectContaining({
        name: '@everyone',
        position: 0,
        is_everyone: true,
        permissions: toWire(EVERYONE_DEFAULT),
      }),
    ]);
    expect(g.channels.map((c: any) => [c.name, c.type])).toEqual([
      ['general', 'text'],
      ['General', 'voice'],
    ]);
    expect(await server.db('guild_members').where({ guild_id: g.id })).toHaveLength(1);
    const mine = await ok(api(server, 'GET', '/api/guilds', { user: owner }));
    expect(mine.map((x: any) => x.id)).toContain(g.id);
    expect((await api(server, 'POST', '/api/guilds', { user: owner, body: { name: '' } })).status).toBe(400);
    expect((await api(server, 'POST', '/api/guilds', { user: owner, body: { name: 'x'.repeat(101) } })).status).toBe(
      400,
    );
    expect((await api(server, 'POST', '/api/guilds', { body: { name: 'anon' } })).status).toBe(401);
  });

  it('honours invite max_uses and expiry; a banned user cannot rejoin (403)', async () => {
    const fx = await seedGuild(server);
    const once = await ok(
      api(server, 'POST', `/api/guilds/${fx.guildId}/invites`, { user: fx.member, body: { max_uses: 1 } }),
      201,
    );
    expect(once).toMatchObject({ max_uses: 1, uses: 0, creator_id: fx.member.id });
    expect(once.code).toMatch(/^[A-Za-z0-9_-]{12}$/);
    const [a, b] = [await createUser(server), await createUser(server)];
    await ok(api(server, 'POST', `/api/invites/${once.code}/join`, { user: a }));
    expect((await api(server, 'POST', `/api/invites/${once.code}/join`, { user: b })).status).toBe(404);
    const soon = await ok(
      api(server, 'POST', `/api/guilds/${fx.guildId}/invites`, { user: fx.owner, body: { expires_in: 1 } }),
      201,
    );
    await server
      .db('invites')
      .where({ code: soon.code })
      .update({ expires_at: Date.now() - 1 });
    expect((await api(server, 'POST', `/api/invites/${soon.code}/join`, { user: b })).status).toBe(404);
    for (const bad of [{ max_uses: 0 }, { expires_in: 0 }, { expires_in: 2_592_001 }, { max_uses: 'x' }]) {
      expect(
        (await api(server, 'POST', `/api/guilds/${fx.guildId}/invites`, { user: fx.owner, body: bad })).status,
      ).toBe(400);
    }
    const open = await ok(api(server, 'POST', `/api/guilds/${fx.guildId}/invites`, { user: fx.owner, body: {} }), 201);
    expect((await api(server, 'POST', `/api/invites/${open.code}/join`, { user: fx.banned })).status).toBe(403);
    // A member banned over the API: gone at once, cannot rejoin, rejoins once unbanned; both audited.
    const late = await createUser(server);
    await ok(api(server, 'POST', `/api/invites/${open.code}/join`, { user: late }));
    await ok(api(server, 'PUT', `/api/guilds/${fx.guildId}/bans/${late.id}`, { user: fx.owner, body: {} }), 204);
    const banned = await api(server, 'POST', `/api/invites/${open.code}/join`, { user: late });
    expect(banned.status).toBe(403);
    expect(banned.body.error.code).toBe('FORBIDDEN');
    expect((await api(server, 'GET', `/api/guilds/${fx.guildId}`, { user: late })).status).toBe(404);
    const bans = await ok(api(server, 'GET', `/api/guilds/${fx.guildId}/bans`, { user: fx.owner }));
    // Paged by user id (docs/api.md): the user created first comes first.
    expect(bans.map((x: any) => x.user.id)).toEqual([fx.banned.id, late.id].sort());
    await ok(api(server, 'DELETE', `/api/guilds/${fx.guildId}/bans/${late.id}`, { user: fx.owner }), 204);
    await ok(api(server, 'POST', `/api/invites/${open.code}/join`, { user: late }));
    const audit = await server
      .db('audit_log')
      .whereIn('action', ['member.ban', 'member.unban'])
      .andWhere('resource_id', late.id);
    expect(audit.map((r: any) => r.action)).toEqual(['member.ban', 'member.unban']);
  });

  it('applies bans, kicks and override changes to the very next request', async () => {
    const fx = await seedGuild(server);
    const send = (u: TestUser) =>
      api(server, 'POST', `/api/channels/${fx.textChannelId}/messages`, { user: u, body: { content: 'x' } });
    expect((await send(fx.member)).status).toBe(201); // warms the permission cache
    await ok(
      api(server, 'PUT', `/api/channels/${fx.textChannelId}/overrides/${fx.everyoneRoleId}`, {
        user: fx.owner,
        body: { allow: '0', deny: toWire(P.SEND_MESSAGES) },
      }),
    );
    expect((await send(fx.member)).status).toBe(403);
    await ok(
      api(server, 'DELETE', `/api/channels/${fx.textChannelId}/overrides/${fx.everyoneRoleId}`, { user: fx.owner }),
      204,
    );
    expect((await send(fx.member)).status).toBe(201);
    await ok(
      api(server, 'PUT', `/api/guilds/${fx.guildId}/bans/${fx.member.id}`, { user: fx.owner, body: { reason: 'bye' } }),
      204,
    );
    expect((await send(fx.member)).status).toBe(404);
    expect((await api(server, 'GET', `/api/channels/${fx.textChannelId}/messages`, { user: fx.member })).status).toBe(
      404,
    );
    expect((await send(fx.admin)).status).toBe(201);
    await ok(api(server, 'DELETE', `/api/guilds/${fx.guildId}/members/${fx.admin.id}`, { user: fx.owner }), 204);
    expect((await send(fx.admin)).status).toBe(404);
    expect((await send(fx.moderator)).status).toBe(201);
    await ok(
      api(server, 'PATCH', `/api/guilds/${fx.guildId}/roles/${fx.everyoneRoleId}`, {
        user: fx.owner,
        body: { permissions: toWire(P.VIEW_CHANNEL) },
      }),
    );
    expect((await send(fx.moderator)).status).toBe(403);
  });

  it('makes the owner transfer or delete before leaving, and removes attachment files with the guild', async () => {
    const fx = await seedGuild(server);
    expect((await api(server, 'POST', `/api/guilds/${fx.guildId}/leave`, { user: fx.owner })).status).toBe(403);
    expect(
      (await api(server, 'PATCH', `/api/guilds/${fx.guildId}`, { user: fx.admin, body: { owner_id: fx.admin.id } }))
        .status,
    ).toBe(403);
    expect(
      (await api(server, 'PATCH', `/api/guilds/${fx.guildId}`, { user: fx.owner, body: { owner_id: fx.outsider.id } }))
        .status,
    ).toBe(400);
    const moved = await ok(
      api(server, 'PATCH', `/api/guilds/${fx.guildId}`, { user: fx.owner, body: { owner_id: fx.admin.id } }),
    );
    expect(moved.owner_id).toBe(fx.admin.id);
    await ok(api(server, 'POST', `/api/guilds/${fx.guildId}/leave`, { user: fx.owner }), 204);
    expect((await api(server, 'GET', `/api/guilds/${fx.guildId}`, { user: fx.owner })).status).toBe(404);

    const up = await fetch(`${server.url}/api/channels/${fx.textChannelId}/attachments`, {
      method: 'POST',
      headers: { authorization: fx.member.headers.authorization!, 'x-filename': 'a.txt', 'content-type': 'text/plain' },
      body: 'bytes',
    });
    const att = (await up.json()) as { id: string };
    const row = await server.db('attachments').where({ id: att.id }).first();
    const file = path.join(server.config.dataDir, 'uploads', row.storage_name);
    expect(existsSync(file)).toBe(true);
    expect((await api(server, 'DELETE', `/api/guilds/${fx.guildId}`, { user: fx.moderator })).status).toBe(403);
    await ok(api(server, 'DELETE', `/api/guilds/${fx.guildId}`, { user: fx.admin }), 204);
    expect(existsSync(file)).toBe(false);
    expect(await server.db('channels').where({ guild_id: fx.guildId })).toEqual([]);
    expect((await api(server, 'GET', `/api/guilds/${fx.guildId}`, { user: fx.admin })).status).toBe(404);
  });

  it('validates channels: voice-only user_limit, positions, ordering', async () => {
    const fx = await seedGuild(server);
    const base = `/api/guilds/${fx.guildId}/channels`;
    expect(
      (await api(server, 'POST', base, { user: fx.owner, body: { name: 't', type: 'text', user_limit: 3 } })).status,
    ).toBe(400);
    expect(
      (await api(server, 'POST', base, { user: fx.owner, body: { name: 'v', type: 'voice', user_limit: 100 } })).status,
    ).toBe(400);
    expect((await api(server, 'POST', base, { user: fx.owner, body: { name: 'v', type: 'stage' } })).status).toBe(400);
    expect(
      (await api(server, 'POST', base, { user: fx.owner, body: { name: 'v', type: 'text', position: -1 } })).status,
    ).toBe(400);
    const first = await ok(
      api(server, 'POST', base, { user: fx.owner, body: { name: 'first', type: 'text', position: 0 } }),
      201,
    );
    const list = await ok(api(server, 'GET', base, { user: fx.member }));
    expect(list.map((c: any) => c.position)).toEqual([...list.map((c: any) => c.position)].sort((a, b) => a - b));
    expect(list.map((c: any) => c.id)).toContain(first.id);
    expect(
      (
        await api(server, 'PATCH', `/api/guilds/${fx.guildId}/roles/${fx.lowRoleId}`, {
          user: fx.owner,
          body: { color: 'red' },
        })
      ).status,
    ).toBe(400);
  });
});

describe('bus events', () => {
  let fx: GuildFixture;
  let seen: BusMessage[] = [];
  const server = useTestServer({ VOICECHAT_RATE_LIMIT_SCALE: '1000' });
  beforeAll(async () => {
    fx = await seedGuild(server);
    server.app.bus.subscribe((m) => {
      seen.push(m);
    });
  });

  const brief = (m: BusMessage) =>
    m.kind === 'dispatch'
      ? `${m.type} ${m.topic}`
      : m.kind === 'access_changed'
        ? `access_changed ${m.guildId}${m.userIds ? ` ${m.userIds.join(',')}` : ''}`
        : m.kind;

  async function expectEvents(action: () => Promise<unknown>, expected: string[]) {
    seen = [];
    await action();
    expect(seen.map(brief)).toEqual(expected);
  }

  it('publishes one event (or the documented pair) after each mutation', async () => {
    const g = fx.guildId;
    const gt = `guild:${g}`;
    const call = (method: string, p: string, user: TestUser, body?: unknown, status?: number) => async () => {
      const r = await api(server, method, p, { user, body });
      if (status) expect(r.status, JSON.stringify(r.body)).toBe(status);
      return r.body;
    };

    await expectEvents(call('PATCH', `/api/guilds/${g}`, fx.owner, { name: 'renamed' }, 200), [`guild_update ${gt}`]);
    let role: any;
    await expectEvents(async () => {
      role = await call('POST', `/api/guilds/${g}/roles`, fx.owner, { name: 'evt', position: 1 }, 201)();
    }, [`role_create ${gt}`]);
    expect(seen[0]).toMatchObject({ kind: 'dispatch', data: { id: role.id, name: 'evt' } });
    await expectEvents(call('PATCH', `/api/guilds/${g}/roles/${role.id}`, fx.owner, { name: 'evt2' }, 200), [
      `role_update ${gt}`,
      `access_changed ${g}`,
    ]);
    await expectEvents(
      call('PUT', `/api/guilds/${g}/members/${fx.member.id}/roles/${role.id}`, fx.owner, undefined, 204),
      [`member_update ${gt}`, `access_changed ${g} ${fx.member.id}`],
    );
    await expectEvents(
      call('DELETE', `/api/guilds/${g}/members/${fx.member.id}/roles/${role.id}`, fx.owner, undefined, 204),
      [`member_update ${gt}`, `access_changed ${g} ${fx.member.id}`],
    );
    await expectEvents(call('DELETE', `/api/guilds/${g}/roles/${role.id}`, fx.owner, undefined, 204), [
      `role_delete ${gt}`,
      `access_changed ${g}`,
    ]);
    let ch: any;
    seen = [];
    ch = await call('POST', `/api/guilds/${g}/channels`, fx.owner, { name: 'evt', type: 'text' }, 201)();
    expect(seen.map(brief)).toEqual([`access_changed ${g}`, `channel_create channel:${ch.id}`]);
    await expectEvents(call('PATCH', `/api/channels/${ch.id}`, fx.owner, { topic: 't' }, 200), [
      `access_changed ${g}`,
      `channel_update channel:${ch.id}`,
    ]);
    await expectEvents(
      call('PUT', `/api/channels/${ch.id}/overrides/${fx.lowRoleId}`, fx.owner, { allow: '0', deny: '1' }, 200),
      [`access_changed ${g}`],
    );
    await expectEvents(call('DELETE', `/api/channels/${ch.id}/overrides/${fx.lowRoleId}`, fx.owner, undefined, 204), [
      `access_changed ${g}`,
    ]);
    let msg: any;
    await expectEvents(async () => {
      msg = await call('POST', `/api/channels/${ch.id}/messages`, fx.member, { content: 'evt' }, 201)();
    }, [`message_new channel:${ch.id}`]);
    expect(seen[0]).toMatchObject({ data: { id: msg.id, content: 'evt' } });
    await expectEvents(call('PATCH', `/api/messages/${msg.id}`, fx.member, { content: 'evt2' }, 200), [
      `message_edit channel:${ch.id}`,
    ]);
    await expectEvents(call('DELETE', `/api/messages/${msg.id}`, fx.member, undefined, 204), [
      `message_delete channel:${ch.id}`,
    ]);
    expect(seen[0]).toMatchObject({ data: { id: msg.id, content: '[deleted]', nonce: null } });
    await expectEvents(call('DELETE', `/api/channels/${ch.id}`, fx.owner, undefined, 204), [
      `channel_delete channel:${ch.id}`,
      `access_changed ${g}`,
    ]);

    const newcomer = await createUser(server);
    const invite = await ok(api(server, 'POST', `/api/guilds/${g}/invites`, { user: fx.owner, body: {} }), 201);
    await expectEvents(call('POST', `/api/invites/${invite.code}/join`, newcomer, undefined, 200), [
      `access_changed ${g} ${newcomer.id}`,
      `member_join ${gt}`,
    ]);
    await expectEvents(call('POST', `/api/guilds/${g}/leave`, newcomer, undefined, 204), [
      `member_leave ${gt}`,
      `access_changed ${g} ${newcomer.id}`,
    ]);
    await joinGuild(server, fx.owner, g, newcomer);
    await expectEvents(call('DELETE', `/api/guilds/${g}/members/${newcomer.id}`, fx.owner, undefined, 204), [
      `member_leave ${gt}`,
      `access_changed ${g} ${newcomer.id}`,
    ]);
    await joinGuild(server, fx.owner, g, newcomer);
    await expectEvents(call('PUT', `/api/guilds/${g}/bans/${newcomer.id}`, fx.owner, {}, 204), [
      `member_leave ${gt}`,
      `access_changed ${g} ${newcomer.id}`,
    ]);
    await expectEvents(call('DELETE', `/api/guilds/${g}/bans/${newcomer.id}`, fx.owner, undefined, 204), [
      `access_changed ${g} ${newcomer.id}`,
    ]);
    // Refused mutations publish nothing.
    await expectEvents(call('PATCH', `/api/guilds/${g}`, fx.member, { name: 'nope' }, 403), []);
    await expectEvents(
      call('POST', `/api/channels/${fx.textChannelId}/messages`, fx.outsider, { content: 'x' }, 404),
      [],
    );
    await expectEvents(call('DELETE', `/api/guilds/${g}`, fx.owner, undefined, 204), [
      `guild_delete ${gt}`,
      `access_changed ${g}`,
    ]);
  });
});
