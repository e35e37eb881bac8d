/**
 * The permission caches must never keep an answer that was read before an invalidation arrived: a
 * ban or revocation racing a lookup would otherwise be undone for the cache's lifetime.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { ChannelAccessCache } from '../../src/access/cache.js';
import { SessionGuard } from '../../src/auth/session-guard.js';
import { LocalEventBus } from '../../src/events/bus.js';
import { EventHub } from '../../src/events/hub.js';
import { createUser } from '../support/factories.js';
import { type GuildFixture, seedGuild } from '../support/guilds.js';
import { useTestServer } from '../support/server.js';

describe('cache invalidation racing a lookup', () => {
  let fx: GuildFixture;
  const server = useTestServer();
  beforeAll(async () => {
    fx = await seedGuild(server);
  });

  it('channel access read before an access_changed is not cached', async () => {
    const bus = new LocalEventBus(server.ctx.logger);
    const cache = new ChannelAccessCache(server.db, new EventHub(bus), { ttlMs: 60_000 });
    const pending = cache.get(fx.textChannelId, fx.member.id);
    // The change is announced while the lookup is in flight; the lookup itself still saw the member.
    bus.publish({ kind: 'access_changed', guildId: fx.guildId, userIds: [fx.member.id] });
    expect(await pending).toBeDefined();
    await server.db('guild_members').where({ guild_id: fx.guildId, user_id: fx.member.id }).delete();
    expect(await cache.get(fx.textChannelId, fx.member.id)).toBeUndefined();
  });

  it('a session read before a revocation is not cached', async () => {
    const bus = new LocalEventBus(server.ctx.logger);
    const guard = new SessionGuard({
      db: server.db,
      keyring: () => server.keyring,
      events: new EventHub(bus),
      cacheMs: 60_000,
    });
    const u = await createUser(server);
    const pending = guard.authenticate(u.accessToken);
    bus.publish({ kind: 'sessions_revoked', userId: u.id, sessionIds: [u.sessionId] });
    expect(await pending).toMatchObject({ userId: u.id });
    await server.db('sessions').where({ family_id: u.sessionId }).update({ revoked_at: Date.now() });
    await expect(guard.authenticate(u.accessToken)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
  });
});
