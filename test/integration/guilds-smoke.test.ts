import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api } from '../support/factories.js';
import { ok, setupGuild } from '../support/guilds.js';
import { startTestServer, type TestServer } from '../support/server.js';

describe('guild smoke', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('creates a guild, members post and read messages', async () => {
    const g = await setupGuild(server);
    const m = await ok(
      api(server, 'POST', `/api/channels/${g.textChannelId}/messages`, { user: g.member, body: { content: 'hi' } }),
      201,
    );
    expect(m.content).toBe('hi');
    const list = await ok(api(server, 'GET', `/api/channels/${g.textChannelId}/messages`, { user: g.owner }));
    expect(list.map((x: any) => x.id)).toEqual([m.id]);
    const roles = await ok(api(server, 'GET', `/api/guilds/${g.guildId}/roles`, { user: g.member }));
    expect(roles.length).toBe(4);
  });
});
