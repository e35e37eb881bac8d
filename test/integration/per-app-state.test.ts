/**
 * Per-app state: everything an app runs (caches, message writer, bus subscriptions, mailer, dummy
 * hash, pg type parsers) belongs to that app. Two apps in one process: stopping one leaves the other
 * fully working, and an access change on one app's bus never reaches the other's cache. On Postgres,
 * our pools parse int8 as numbers without changing pg's process-wide parsers.
 */
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb } from '../../src/db/knex.js';
import { TEST_DIALECT } from '../support/db.js';
import { api, createUser, type TestUser } from '../support/factories.js';
import { type GuildRows, seedGuildRows } from '../support/guilds.js';
import { startTestServer, type TestServer } from '../support/server.js';

describe('two apps in one process', () => {
  let a: TestServer;
  let b: TestServer;
  let user: TestUser;
  let g: GuildRows;
  beforeAll(async () => {
    a = await startTestServer();
    // b serves the same database, so the same user and guild exist for both.
    b = await startTestServer({ database: a.database, keyring: a.keyring });
    user = await createUser(a);
    g = await seedGuildRows(a.db, user.id);
  });
  afterAll(async () => {
    await b?.stop();
    await a?.stop();
  });

  it('keep their own access caches, and one stopping leaves the other working', async () => {
    const post = (s: TestServer, content: string) =>
      api(s, 'POST', `/api/channels/${g.textChannelId}/messages`, { user, body: { content } });
    expect((await post(a, 'to a')).status).toBe(201);
    expect((await post(b, 'to b')).status).toBe(201);
    // Invalidate only a's cache while the database says the user is gone: a refuses, b (cached) does not.
    await a.db('guild_members').where({ guild_id: g.guildId, user_id: user.id }).delete();
    a.app.bus.publish({ kind: 'access_changed', guildId: g.guildId, userIds: [user.id] });
    expect((await post(a, 'gone')).status).toBe(404);
    expect((await post(b, 'cached')).status).toBe(201);
    await a.db('guild_members').insert({ guild_id: g.guildId, user_id: user.id, joined_at: Date.now() });
    await a.app.stop();
    expect((await post(b, 'after a stopped')).status).toBe(201);
    expect(
      (await api(b, 'POST', '/auth/login', { body: { username: 'nobody_here', password: 'x'.repeat(8) } })).status,
    ).toBe(401);
  });
});

describe.runIf(TEST_DIALECT === 'pg')('pg type parsers', () => {
  it('our pools parse int8 as numbers; pg itself is left as it was', async () => {
    const server = await startTestServer();
    try {
      const db = createDb({ dialect: 'pg', databaseUrl: server.database.databaseUrl, poolMax: 1 });
      const ours = await db.raw('select 9007199254740991::int8 as n');
      await db.destroy();
      expect(ours.rows[0].n).toBe(9007199254740991);
      const pg = createRequire(import.meta.url)('pg') as typeof import('pg');
      const client = new pg.Client({ connectionString: server.database.databaseUrl });
      await client.connect();
      const theirs = await client.query('select 5::int8 as n');
      await client.end();
      expect(theirs.rows[0].n).toBe('5');
    } finally {
      await server.stop();
    }
  });
});
