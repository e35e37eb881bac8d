/**
 * The member list of a guild larger than one page (issue 14 item 2): the client walks the pages
 * (1,000 members each) and lists all 2,500, the last-created one included.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { browserSuite, newPerson, type Person } from '../support/browser.js';
import { createUser } from '../support/factories.js';
import { guildWith, seedUsers } from '../support/guilds.js';

describe('web client: a 2,500-member guild', { timeout: 90_000 }, () => {
  const suite = browserSuite();
  let owner: Person;
  let guildId: string;
  let channelId: string;
  let lastName: string;

  beforeAll(async () => {
    const { server, browser } = suite;
    const ownerUser = await createUser(server);
    ({ guildId, channelId } = await guildWith(server, ownerUser, 'Crowd'));
    const ids = await seedUsers(server.db, guildId, 2499);
    lastName = (
      await server
        .db('users')
        .where({ id: ids.at(-1) })
        .first()
    ).username;
    owner = await newPerson(browser, server, { refreshToken: ownerUser.refreshToken });
    suite.people.owner = owner;
  }, 60_000);

  it('lists every member, loaded page by page', async () => {
    const memberRequests: string[] = [];
    owner.page.on('request', (r) => {
      if (r.url().includes(`/api/guilds/${guildId}/members`)) memberRequests.push(r.url());
    });
    await owner.page.goto(`/channels/${guildId}/${channelId}`);
    const list = owner.page.getByRole('complementary', { name: 'Members' });
    await list.getByRole('heading', { name: 'Members — 2500' }).waitFor();
    await list.getByRole('button', { name: new RegExp(`^offline ${lastName}$`) }).waitFor({ state: 'attached' });
    expect(await list.locator('button.member').count()).toBe(2500);
    expect(memberRequests).toHaveLength(3);
    expect(memberRequests[1]).toMatch(/after=[0-9a-f-]{36}/);
  });
});
