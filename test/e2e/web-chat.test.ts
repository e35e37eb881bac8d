/**
 * Two people in two browser contexts: the admin signs up, creates a guild and an invite; the second
 * person signs up through /invite/<code>; they chat live both ways, see each other's edits, deletions,
 * typing and an image upload (previewed from a blob: URL fetched with the bearer token). Nothing the
 * pages request leaves the server's origin.
 */
import type { Browser } from 'playwright-core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  browserSuite,
  foreignRequests,
  messageRows,
  newPerson,
  type Person,
  registerInBrowser,
  sendInBrowser,
} from '../support/browser.js';
import type { TestServer } from '../support/server.js';

// A 2×2 PNG (file-type detects it by its magic bytes).
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGP4z8DAwMDAxMDAwMDAAAANHQEDasKb6QAAAABJRU5ErkJggg==',
  'base64',
);

describe('web client: two people chat', { timeout: 60_000 }, () => {
  const suite = browserSuite({ env: { VOICECHAT_RATE_LIMIT_SCALE: '20' } });
  let server: TestServer;
  let browser: Browser;
  let alice: Person;
  let bob: Person;

  beforeAll(async () => {
    ({ server, browser } = suite);
    [alice, bob] = await Promise.all([newPerson(browser, server), newPerson(browser, server)]);
    Object.assign(suite.people, { alice, bob });
  });

  it('signs up, creates a guild and an invite, and the invitee joins through /invite/<code>', async () => {
    const a = alice.page;
    await registerInBrowser(a, { username: 'alice', password: 'alice-password-1', displayName: 'Alice' });
    await a.getByRole('button', { name: 'Create a guild' }).click();
    await a.getByLabel('Guild name').fill('Book club');
    await a.getByRole('button', { name: 'Create', exact: true }).click();
    await expect.poll(() => a.url()).toMatch(/\/channels\/[0-9a-f-]{36}\/[0-9a-f-]{36}$/);
    await a.getByRole('heading', { name: 'general', exact: true }).waitFor();

    await a.getByRole('button', { name: 'Invite' }).click();
    await a.getByRole('button', { name: 'Create invite link' }).click();
    const link = await a.getByRole('textbox', { name: 'Invite link' }).first().inputValue();
    expect(link).toMatch(new RegExp(`^${server.url}/invite/[A-Za-z0-9_-]+$`));
    await a.keyboard.press('Escape');
    await expect.poll(() => a.getByRole('dialog').count()).toBe(0);

    const code = link.split('/').pop()!;
    await registerInBrowser(bob.page, { username: 'bob', password: 'bob-password-1', displayName: 'Bob' }, code);
    await bob.page.getByRole('heading', { name: 'general', exact: true }).waitFor();
    expect(bob.page.url()).toBe(a.url());
    // Alice sees Bob join in her member list, live.
    await a.getByRole('complementary', { name: 'Members' }).getByText('Bob', { exact: true }).waitFor();
  });

  it('delivers messages live both ways, with typing, edits and deletions', async () => {
    const a = alice.page;
    const b = bob.page;
    await b.getByRole('textbox', { name: /^Message #/ }).pressSequentially('hel');
    await a.getByText('Bob is typing…').waitFor();
    await b.getByRole('textbox', { name: /^Message #/ }).fill('');

    await sendInBrowser(a, 'Hello Bob, see https://example.org/reading-list.');
    const seenByBob = messageRows(b).filter({ hasText: 'Hello Bob' });
    await seenByBob.waitFor();
    // The link is an element built from the text, with the trailing full stop left out.
    await expect.poll(() => seenByBob.getByRole('link').getAttribute('href')).toBe('https://example.org/reading-list');

    await sendInBrowser(b, 'Hi Alice!\nSecond line.');
    const seenByAlice = messageRows(a).filter({ hasText: 'Hi Alice!' });
    await seenByAlice.waitFor();
    expect(await seenByAlice.locator('.content').textContent()).toBe('Hi Alice!\nSecond line.');
    expect(await seenByAlice.locator('.author').textContent()).toBe('Bob');

    // Alice edits her message; Bob sees the new text marked as edited.
    const id = await messageRows(a).filter({ hasText: 'Hello Bob' }).getAttribute('data-id');
    const mine = a.locator(`article[data-id="${id}"]`);
    await mine.hover();
    await mine.getByRole('button', { name: 'Edit message' }).click();
    const editor = mine.getByRole('textbox', { name: 'Edit message' });
    await editor.fill('Hello Bob (edited text)');
    await editor.press('Enter');
    await messageRows(b).filter({ hasText: 'Hello Bob (edited text)' }).filter({ hasText: '(edited)' }).waitFor();

    // Bob deletes his; Alice sees it go.
    const his = messageRows(b).filter({ hasText: 'Hi Alice!' });
    await his.hover();
    await his.getByRole('button', { name: 'Delete message' }).click();
    await his.getByRole('button', { name: 'Delete for everyone' }).click();
    await messageRows(a).filter({ hasText: 'Message deleted' }).waitFor();
    expect(await messageRows(a).filter({ hasText: 'Hi Alice!' }).count()).toBe(0);

    // Each message exists once on each side.
    for (const p of [a, b]) expect(await messageRows(p).filter({ hasText: 'Hello Bob' }).count()).toBe(1);
  });

  it('uploads an image (a non-ASCII name: percent-encoded X-Filename) with a progress bar; the other side previews it', async () => {
    const b = bob.page;
    await b
      .locator('input[type=file]')
      .setInputFiles({ name: 'couverture café 日本.png', mimeType: 'image/png', buffer: PNG });
    await b.getByRole('list', { name: 'Attachments' }).getByText('couverture café 日本.png').waitFor();
    await expect.poll(() => b.locator('.uploads progress').getAttribute('value')).toBe('1');
    await sendInBrowser(b, 'Our next book');
    const row = messageRows(alice.page).filter({ hasText: 'Our next book' });
    const img = row.getByRole('img', { name: 'couverture café 日本.png' });
    await img.waitFor();
    expect(await img.getAttribute('src')).toMatch(/^blob:/);
    await expect.poll(() => img.evaluate((el: any) => el.complete && el.naturalWidth)).toBe(2);
    // The file button downloads it with its name.
    const download = alice.page.waitForEvent('download');
    await row.getByRole('button', { name: /couverture café 日本\.png/ }).click();
    expect((await download).suggestedFilename()).toBe('couverture café 日本.png');
  });

  it('kept every request on the server origin, with no CSP violation or page error', () => {
    for (const p of [alice, bob]) {
      expect(p.requests.length).toBeGreaterThan(5);
      expect(foreignRequests(p, server)).toEqual([]);
      expect(p.violations).toEqual([]);
      expect(p.pageErrors).toEqual([]);
      expect(p.dialogs).toEqual([]);
    }
  });
});
