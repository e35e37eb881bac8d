/**
 * What the web client shows of presence (issue 14 item 3): a member who is connected appears online
 * in the member list, also right after a reload (from `ready`, no event needed), and goes offline
 * when their last tab closes, after the server's grace period.
 */
import { beforeAll, describe, it } from 'vitest';
import { browserSuite, newPerson, type Person } from '../support/browser.js';
import { createUser, type TestUser } from '../support/factories.js';
import { guildWith } from '../support/guilds.js';

describe('web client: presence in the member list', { timeout: 60_000 }, () => {
  const suite = browserSuite({ env: { VOICECHAT_PRESENCE_GRACE_MS: '500' } });
  let ownerUser: TestUser;
  let friendUser: TestUser;
  let owner: Person;
  let friend: Person;
  let path: string;

  beforeAll(async () => {
    const { server, browser } = suite;
    [ownerUser, friendUser] = await Promise.all([createUser(server), createUser(server)]);
    const { guildId, channelId } = await guildWith(server, ownerUser, 'Porch', [friendUser]);
    path = `/channels/${guildId}/${channelId}`;
    [owner, friend] = await Promise.all([
      newPerson(browser, server, { refreshToken: ownerUser.refreshToken }),
      newPerson(browser, server, { refreshToken: friendUser.refreshToken }),
    ]);
    Object.assign(suite.people, { owner, friend });
  });

  const friendEntry = () =>
    owner.page
      .getByRole('complementary', { name: 'Members' })
      .getByRole('button', { name: new RegExp(`${friendUser.username}$`) });

  it('shows a connected member online, after a reload too, and offline once they leave', async () => {
    await friend.page.goto(path);
    await owner.page.goto(path);
    await friendEntry().getByRole('img', { name: 'online' }).waitFor();
    // After a reload the status comes from ready (the friend sends nothing new).
    await owner.page.reload();
    await friendEntry().getByRole('img', { name: 'online' }).waitFor();
    await friend.page.close();
    await friendEntry().getByRole('img', { name: 'offline' }).waitFor({ timeout: 10_000 });
  });
});
