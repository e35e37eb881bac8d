/**
 * Accessibility and layout: axe-core (injected by the test) finds no serious or critical WCAG 2.1 A/AA
 * violation on the sign-in page, the chat view (light and dark) and the settings page; the chat works
 * by keyboard alone (Tab order, Enter sends, Shift+Enter is a newline, Escape closes dialogs); and
 * screenshots of sign-in, chat (desktop and 375 px wide) and settings are written to test-output/web.
 */
import { createRequire } from 'node:module';
import type { Browser, Page } from 'playwright-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { browserSuite, messageRows, newPerson, type Person, SCREENSHOT_DIR, screenshot } from '../support/browser.js';
import { api, createUser, type TestUser } from '../support/factories.js';
import { guildWith, ok } from '../support/guilds.js';
import type { TestServer } from '../support/server.js';

const axeSource: string = createRequire(import.meta.url)('axe-core').source;

interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[] }[];
}

/** Serious and critical WCAG 2.1 A/AA violations on the current page. */
async function axe(page: Page): Promise<string[]> {
  // Evaluated through the DevTools protocol, so the page's CSP (which would refuse an injected
  // inline script) does not apply to the checker itself.
  await page.evaluate(axeSource);
  const violations: AxeViolation[] = await page.evaluate(async () => {
    const result = await (globalThis as any).axe.run((globalThis as any).document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
      resultTypes: ['violations'],
    });
    return result.violations;
  });
  return violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

describe('web client: accessibility, keyboard and layout', { timeout: 60_000 }, () => {
  const suite = browserSuite();
  let server: TestServer;
  let browser: Browser;
  let owner: TestUser;
  let friend: TestUser;
  let person: Person;
  let guildId: string;
  let channelId: string;

  beforeAll(async () => {
    ({ server, browser } = suite);
    [owner, friend] = await Promise.all([createUser(server), createUser(server)]);
    await ok(api(server, 'PATCH', '/auth/me', { user: owner, body: { display_name: 'Ada Lovelace' } }));
    await ok(api(server, 'PATCH', '/auth/me', { user: friend, body: { display_name: 'Charles Babbage' } }));
    ({ guildId, channelId } = await guildWith(server, owner, 'Analytical Engine', [friend]));
    const role = await ok(
      api(server, 'POST', `/api/guilds/${guildId}/roles`, {
        user: owner,
        body: { name: 'Mathematicians', color: '#1565c0', permissions: '0', position: 1 },
      }),
      201,
    );
    await ok(api(server, 'PUT', `/api/guilds/${guildId}/members/${friend.id}/roles/${role.id}`, { user: owner }), 204);
    await ok(
      api(server, 'POST', `/api/guilds/${guildId}/channels`, { user: owner, body: { name: 'notes', type: 'text' } }),
      201,
    );
    const lines = [
      'The engine might compose elaborate pieces of music of any degree of complexity.',
      'See https://example.org/notes/g for note G.',
      'It weaves algebraic patterns just as the Jacquard loom weaves flowers and leaves.',
    ];
    for (const [i, content] of lines.entries())
      await ok(
        api(server, 'POST', `/api/channels/${channelId}/messages`, { user: i % 2 ? owner : friend, body: { content } }),
        201,
      );
    person = await newPerson(browser, server);
    Object.assign(suite.people, { person });
  });

  it('sign-in page: no serious violations; screenshot', async () => {
    const page = person.page;
    await page.goto('/');
    await page.getByRole('form', { name: 'Sign in' }).waitFor();
    expect(await axe(page)).toEqual([]);
    await screenshot(page, 'sign-in');
    // Keyboard: Tab from the username reaches the password, then the button; Enter submits.
    await page.getByLabel('Username').focus();
    await page.keyboard.type(owner.username);
    await page.keyboard.press('Tab');
    await page.keyboard.type('wrong password');
    await page.keyboard.press('Enter');
    await page.getByRole('alert').filter({ hasText: 'Wrong username or password.' }).waitFor();
    await page.getByLabel('Password').fill(owner.password);
    await page.getByLabel('Password').press('Enter');
    await page.getByRole('navigation', { name: 'Guilds' }).waitFor();
  });

  it('chat view: no serious violations in light and dark; keyboard use; screenshots at desktop and 375 px', async () => {
    const page = person.page;
    await page.goto(`/channels/${guildId}/${channelId}`);
    await messageRows(page).filter({ hasText: 'Jacquard loom' }).waitFor();
    await page.getByRole('complementary', { name: 'Members' }).getByText('Charles Babbage').waitFor();
    expect(await axe(page)).toEqual([]);
    await screenshot(page, 'chat-desktop');

    // Keyboard only: the message box is reachable, Enter sends, Shift+Enter makes a newline.
    const box = page.getByRole('textbox', { name: 'Message #general' });
    await box.focus();
    await page.keyboard.type('first line');
    await page.keyboard.press('Shift+Enter');
    await page.keyboard.type('second line');
    await page.keyboard.press('Enter');
    const sent = messageRows(page).filter({ hasText: 'second line' });
    await sent.waitFor();
    expect(await sent.locator('.content').textContent()).toBe('first line\nsecond line');
    expect(await box.inputValue()).toBe('');
    // Tab moves focus forward from the message box (no trap), with a visible focus ring.
    await box.focus();
    await page.keyboard.press('Tab');
    const ring = await page.evaluate(() => {
      const el = (globalThis as any).document.activeElement;
      return { tag: el.tagName, outline: (globalThis as any).getComputedStyle(el).outlineStyle };
    });
    expect(ring).toEqual({ tag: 'BUTTON', outline: 'solid' });
    // Escape closes a dialog and focus is back in the page.
    await page.getByRole('button', { name: 'Create a guild' }).click();
    await page.getByRole('dialog', { name: 'Create a guild' }).waitFor();
    expect(await axe(page)).toEqual([]);
    await page.keyboard.press('Escape');
    await expect.poll(() => page.getByRole('dialog').count()).toBe(0);

    await page.emulateMedia({ colorScheme: 'dark' });
    expect(
      await page.evaluate(
        () => (globalThis as any).getComputedStyle((globalThis as any).document.documentElement).backgroundColor,
      ),
    ).toBe('rgb(30, 31, 34)');
    expect(await axe(page)).toEqual([]);
    await screenshot(page, 'chat-desktop-dark');
    await page.emulateMedia({ colorScheme: 'light' });

    await page.setViewportSize({ width: 375, height: 740 });
    // One column: the message list fills the width; channels and members open as panels.
    const list = await page.getByRole('log').boundingBox();
    expect(list!.width).toBeGreaterThan(350);
    expect(await page.evaluate(() => (globalThis as any).document.documentElement.scrollWidth)).toBeLessThanOrEqual(
      375,
    );
    await screenshot(page, 'chat-375');
    await page.getByRole('button', { name: 'Show channels' }).click();
    await page.getByRole('navigation', { name: 'Channels' }).getByRole('link', { name: 'notes', exact: true }).click();
    await page.getByRole('heading', { name: 'notes', exact: true }).waitFor();
    expect(await axe(page)).toEqual([]);
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  it('settings page: no serious violations; screenshot', async () => {
    const page = person.page;
    await page.goto('/settings');
    await page.getByRole('heading', { name: 'Sessions' }).waitFor();
    await page.getByRole('table').getByText('this browser').waitFor();
    expect(await axe(page)).toEqual([]);
    await screenshot(page, 'settings');
    expect(person.pageErrors).toEqual([]);
    expect(SCREENSHOT_DIR).toMatch(/test-output/);
  });
});
