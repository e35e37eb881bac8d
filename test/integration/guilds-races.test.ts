/** Concurrent membership changes: a ban racing a join by invite never leaves a banned member. */
import { beforeAll, describe, expect, it } from 'vitest';
import { api, createUser } from '../support/factories.js';
import { type GuildFixture, ok, useGuildServer } from '../support/guilds.js';
import type { TestServer } from '../support/server.js';

describe('membership races', () => {
  const suite = useGuildServer();
  let server: TestServer;
  let fx: GuildFixture;
  beforeAll(() => {
    ({ server, fx } = suite);
  });

  it('ban and join by invite at the same moment: never both banned and a member', async () => {
    const invite = await ok(
      api(server, 'POST', `/api/guilds/${fx.guildId}/invites`, { user: fx.owner, body: {} }),
      201,
    );
    for (let i = 0; i < 15; i++) {
      const u = await createUser(server);
      const [join, ban] = await Promise.all([
        api(server, 'POST', `/api/invites/${invite.code}/join`, { user: u }),
        api(server, 'PUT', `/api/guilds/${fx.guildId}/bans/${u.id}`, { user: fx.owner, body: {} }),
      ]);
      expect(ban.status).toBe(204);
      expect([200, 403]).toContain(join.status);
      const member = await server.db('guild_members').where({ guild_id: fx.guildId, user_id: u.id }).first();
      const banned = await server.db('bans').where({ guild_id: fx.guildId, user_id: u.id }).first();
      expect(banned).toBeTruthy();
      expect(member).toBeUndefined();
    }
  });
});
