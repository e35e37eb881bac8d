/**
 * Concurrent membership changes: a ban racing a join by invite never leaves a banned member.
 * Postgres only: under READ COMMITTED the join's ban check and its insert can interleave with a ban
 * unless the guild row is locked (what this test proves). SQLite runs one write transaction at a time
 * (BEGIN IMMEDIATE), so there the two can never interleave and the test could not fail.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { TEST_DIALECT } from '../support/db.js';
import { api, createUser } from '../support/factories.js';
import { type GuildFixture, ok, seedGuild } from '../support/guilds.js';
import { useTestServer } from '../support/server.js';

describe.runIf(TEST_DIALECT === 'pg')('membership races (Postgres)', () => {
  const server = useTestServer({ VOICECHAT_RATE_LIMIT_SCALE: '1000' });
  let fx: GuildFixture;
  beforeAll(async () => {
    fx = await seedGuild(server);
  });

  it('ban and join by invite at the same moment: never both banned and a member', async () => {
    const invite = await ok(
      api(server, 'POST', `/api/guilds/${fx.guildId}/invites`, { user: fx.owner, body: {} }),
      201,
    );
    for (let i = 0; i < 20; i++) {
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
