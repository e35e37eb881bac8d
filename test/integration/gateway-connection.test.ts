/**
 * What a feature module gets from a gateway connection (src/events/connection.ts), on real sockets:
 * per-connection state that is its own for each socket, close hooks that run exactly once whatever
 * ends the socket (client close, revoked session, shutdown), even when another hook throws; and the
 * event hub isolating a throwing bus subscriber so a committed write still answers and every other
 * subscriber (the access cache) still gets the message.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { ChannelAccessCache } from '../../src/access/cache.js';
import { connectionSlot } from '../../src/events/connection.js';
import { api, createUser, type TestUser } from '../support/factories.js';
import { type GuildFixture, seedGuild } from '../support/guilds.js';
import { startTestServer, useTestServer } from '../support/server.js';
import { GatewayClient } from '../support/ws.js';

describe('gateway connections as features see them', () => {
  let user: TestUser;
  const server = useTestServer({ VOICECHAT_RATE_LIMIT_SCALE: '100' });
  beforeAll(async () => {
    user = await createUser(server);
  });

  it('keeps state per connection and runs close hooks once, for any reason the socket ends', async () => {
    const slot = connectionSlot('test', () => ({ transports: new Set<string>() }));
    const a = await GatewayClient.ready(server.wsUrl, user.accessToken);
    const b = await GatewayClient.ready(server.wsUrl, user.accessToken);
    const conns = server.app.gateway.connectionsOf(user.id);
    expect(conns).toHaveLength(2);
    const [connA, connB] = conns as [(typeof conns)[0], (typeof conns)[0]];
    connA.state(slot).transports.add('t1');
    expect(connA.state(slot).transports.has('t1')).toBe(true);
    expect(connB.state(slot).transports.size).toBe(0);

    const closedA: string[] = [];
    connA.onClose(() => {
      throw new Error('a feature bug');
    });
    connA.onClose(() => closedA.push([...connA.state(slot).transports].join()));
    a.client.close();
    await a.client.closed;
    await expect.poll(() => closedA).toEqual(['t1']);
    expect(connA.closed).toBe(true);
    expect(server.logs.join('')).toContain('connection close hook failed');
    // A hook added after the close runs at once.
    let late = 0;
    connA.onClose(() => late++);
    expect(late).toBe(1);

    // A revoked session ends the socket (4001): its hooks run too, once.
    let closedB = 0;
    connB.onClose(() => closedB++);
    server.app.bus.publish({ kind: 'sessions_revoked', userId: user.id, sessionIds: [user.sessionId] });
    expect((await b.client.closed).code).toBe(4001);
    expect(closedB).toBe(1);
    expect(server.app.gateway.connectionsOf(user.id)).toHaveLength(0);
  });

  it('runs close hooks at shutdown', async () => {
    const other = await startTestServer();
    try {
      const u = await createUser(other);
      const c = await GatewayClient.ready(other.wsUrl, u.accessToken);
      let closed = 0;
      other.app.gateway.connectionsOf(u.id)[0]?.onClose(() => closed++);
      await other.stop();
      expect(closed).toBe(1);
      expect((await c.client.closed).code).toBe(1001);
    } finally {
      await other.stop();
    }
  });
});

describe('event hub', () => {
  let owner: TestUser;
  let member: TestUser;
  let g: GuildFixture;
  const server = useTestServer({ VOICECHAT_RATE_LIMIT_SCALE: '100' });
  beforeAll(async () => {
    g = await seedGuild(server);
    ({ owner, member } = g);
  });

  it('a throwing subscriber neither fails the committed write nor stops the access cache', async () => {
    // Warm the access cache: the member may post.
    const post = () =>
      api(server, 'POST', `/api/channels/${g.textChannelId}/messages`, { user: member, body: { content: 'hi' } });
    expect((await post()).status).toBe(201);
    const off = server.ctx.events.on('access_changed', () => {
      throw new Error('a feature bug');
    });
    // A cache subscribed after the throwing subscriber, holding a positive answer for a minute.
    const later = new ChannelAccessCache(server.db, server.ctx.events, { ttlMs: 60_000 });
    try {
      expect(await later.get(g.textChannelId, member.id)).toBeDefined();
      const kick = await api(server, 'DELETE', `/api/guilds/${g.guildId}/members/${member.id}`, { user: owner });
      expect(kick.status).toBe(204);
      expect(server.logs.join('')).toContain('bus handler failed');
      // Both caches saw the access_changed despite the throwing subscriber: the kicked member is refused.
      expect(await later.get(g.textChannelId, member.id)).toBeUndefined();
      expect((await post()).status).toBe(404);
    } finally {
      off();
      later.close();
    }
  });
});
