/**
 * Controls follow permissions: a member without MANAGE_CHANNELS sees no channel controls, and when
 * the request is forced anyway (the channel settings URL) the server's refusal is shown. The owner
 * then creates a role in the role editor (name, colour, permission checkboxes), assigns it, and the
 * member's controls appear live; finally the owner kicks the member, whose view drops the guild.
 */
import type { Browser, Page } from 'playwright-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { browserSuite, newPerson, type Person } from '../support/browser.js';
import { api, createUser, type TestUser } from '../support/factories.js';
import { guildWith, ok } from '../support/guilds.js';
import type { TestServer } from '../support/server.js';

const channelControls = (page: Page) =>
  page.getByRole('navigation', { name: 'Channels' }).getByRole('button', { name: /^Create (text|voice) channel$/ });
const gearLinks = (page: Page) =>
  page.getByRole('navigation', { name: 'Channels' }).getByRole('link', { name: /^Edit channel / });

describe('web client: permissions decide the controls', { timeout: 60_000 }, () => {
  const suite = browserSuite();
  let server: TestServer;
  let browser: Browser;
  let ownerUser: TestUser;
  let memberUser: TestUser;
  let owner: Person;
  let member: Person;
  let guildId: string;
  let generalId: string;

  beforeAll(async () => {
    ({ server, browser } = suite);
    [ownerUser, memberUser] = await Promise.all([createUser(server), createUser(server)]);
    ({ guildId, channelId: generalId } = await guildWith(server, ownerUser, 'Garden', [memberUser]));
    [owner, member] = await Promise.all([
      newPerson(browser, server, { refreshToken: ownerUser.refreshToken }),
      newPerson(browser, server, { refreshToken: memberUser.refreshToken }),
    ]);
    await Promise.all([
      owner.page.goto(`/channels/${guildId}/${generalId}`),
      member.page.goto(`/channels/${guildId}/${generalId}`),
    ]);
    await Promise.all(
      [owner, member].map((p) =>
        p.page.getByRole('complementary', { name: 'Members' }).getByRole('button').nth(1).waitFor(),
      ),
    );
    Object.assign(suite.people, { owner, member });
  });

  it('shows channel, role and guild controls to the owner only', async () => {
    expect(await channelControls(owner.page).count()).toBe(2);
    expect(await gearLinks(owner.page).count()).toBe(2);
    for (const name of ['Roles', 'Settings', 'Invite'])
      expect(await owner.page.getByRole('button', { name, exact: true }).count(), name).toBe(1);

    expect(await channelControls(member.page).count()).toBe(0);
    expect(await gearLinks(member.page).count()).toBe(0);
    expect(await member.page.getByRole('button', { name: 'Roles', exact: true }).count()).toBe(0);
    expect(await member.page.getByRole('button', { name: 'Settings', exact: true }).count()).toBe(0);
    // @everyone may create invites.
    expect(await member.page.getByRole('button', { name: 'Invite', exact: true }).count()).toBe(1);
  });

  it("shows the server's refusal when the member forces a channel edit", async () => {
    const page = member.page;
    await page.goto(`/channels/${guildId}/${generalId}/settings`);
    const dialog = page.getByRole('dialog', { name: 'Edit #general' });
    await dialog.getByLabel('Name').fill('taken-over');
    await dialog.getByRole('button', { name: 'Save' }).click();
    await dialog
      .getByRole('alert')
      .filter({ hasText: /^Not allowed: / })
      .waitFor();
    await dialog.getByRole('button', { name: 'Delete channel' }).click();
    await dialog.getByRole('button', { name: 'Really delete #general' }).click();
    await expect.poll(() => dialog.getByRole('alert').textContent()).toMatch(/^Not allowed: /);
    const channel = await ok(api(server, 'GET', `/api/channels/${generalId}`, { user: ownerUser }));
    expect(channel.name).toBe('general');
    await page.keyboard.press('Escape');
    await expect.poll(() => page.getByRole('dialog').count()).toBe(0);
  });

  it('lets the owner create and assign a role; the member gains the controls live', async () => {
    const page = owner.page;
    await page.getByRole('button', { name: 'Roles', exact: true }).click();
    const dialog = page.getByRole('dialog', { name: 'Roles' });
    await dialog.getByRole('button', { name: 'New role' }).click();
    await dialog.getByLabel('Role name').fill('Gardeners');
    await dialog.getByLabel('Role colour').fill('#2e7d32');
    await dialog.getByLabel('Manage channels').check();
    await dialog.getByRole('button', { name: 'Create role' }).click();
    await dialog.getByRole('button', { name: 'Edit role Gardeners' }).waitFor();
    await page.keyboard.press('Escape');

    const roles = await ok(api(server, 'GET', `/api/guilds/${guildId}/roles`, { user: ownerUser }));
    const created = roles.find((r: { name: string }) => r.name === 'Gardeners');
    expect(created.color).toBe('#2e7d32');
    expect(BigInt(created.permissions) & (1n << 14n)).toBe(1n << 14n);

    const memberName = memberUser.username;
    await page
      .getByRole('complementary', { name: 'Members' })
      .getByRole('button', { name: new RegExp(memberName) })
      .click();
    const memberDialog = page.getByRole('dialog', { name: memberName });
    await memberDialog.getByLabel('Gardeners').check();
    await expect
      .poll(
        async () =>
          (await api(server, 'GET', `/api/guilds/${guildId}/members`, { user: ownerUser })).body.find(
            (m: any) => m.user.id === memberUser.id,
          ).roles,
      )
      .toEqual([created.id]);

    await expect.poll(() => channelControls(member.page).count()).toBe(2);
    await member.page
      .getByRole('complementary', { name: 'Members' })
      .getByRole('list', { name: 'Roles' })
      .getByText('Gardeners')
      .waitFor();

    // Kick: the member's view drops the guild.
    await memberDialog.getByRole('button', { name: 'Kick' }).click();
    await expect.poll(() => memberDialog.count()).toBe(0);
    await member.page.getByText('You are not in any guild yet').waitFor();
    for (const p of [owner, member]) expect(p.pageErrors).toEqual([]);
  });
});
