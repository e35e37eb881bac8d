/**
 * User text is never HTML: messages, display names, guild, channel and role names and filenames
 * holding markup, script, `javascript:` links and bidi overrides render as text. No dialog opens, no
 * element or request comes from the payloads, every request stays on the server's origin, and the
 * page's CSP reports nothing — until the test itself tries an HTML sink, which Trusted Types refuse.
 */
import type { Browser } from 'playwright-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { P, toWire } from '../../src/access/permissions.js';
import { WEB_CSP } from '../../src/http/static-web.js';
import { browserSuite, foreignRequests, messageRows, newPerson, type Person } from '../support/browser.js';
import { api, createUser, type TestUser } from '../support/factories.js';
import { ok } from '../support/guilds.js';
import type { TestServer } from '../support/server.js';

const IMG = `<img src=x onerror="alert('xss-img')">`;
const SCRIPT = `<script>alert('xss-script')</script>`;
const JS_LINK = `javascript:alert('xss-link')`;
const MD_LINK = `[click me](javascript:alert('xss-md'))`;
const RTL = `invoice\u202Egnp.exe`;
const MIXED = `${IMG} ${SCRIPT} ${JS_LINK} ${RTL} <a href="javascript:alert(1)">a</a> <iframe src="javascript:alert(2)">`;
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGP4z8DAwMDAxMDAwMDAAAANHQEDasKb6QAAAABJRU5ErkJggg==',
  'base64',
);

describe('web client: user text is rendered as text', { timeout: 60_000 }, () => {
  const suite = browserSuite();
  let server: TestServer;
  let browser: Browser;
  let owner: TestUser;
  let member: TestUser;
  let viewer: Person;
  let guildId: string;
  let channelId: string;
  const messages = [IMG, SCRIPT, JS_LINK, MD_LINK, RTL, MIXED];

  beforeAll(async () => {
    ({ server, browser } = suite);
    [owner, member] = await Promise.all([createUser(server), createUser(server)]);
    await ok(api(server, 'PATCH', '/auth/me', { user: owner, body: { display_name: IMG } }));
    await ok(
      api(server, 'PATCH', '/auth/me', { user: member, body: { display_name: `${RTL}${SCRIPT}`.slice(0, 64) } }),
    );
    const guild = await ok(api(server, 'POST', '/api/guilds', { user: owner, body: { name: `${SCRIPT} guild` } }), 201);
    guildId = guild.id;
    const channel = await ok(
      api(server, 'POST', `/api/guilds/${guildId}/channels`, {
        user: owner,
        body: { name: IMG, type: 'text', topic: JS_LINK, position: 0 },
      }),
      201,
    );
    channelId = channel.id;
    const invite = await ok(api(server, 'POST', `/api/guilds/${guildId}/invites`, { user: owner, body: {} }), 201);
    await ok(api(server, 'POST', `/api/invites/${invite.code}/join`, { user: member }));
    const role = await ok(
      api(server, 'POST', `/api/guilds/${guildId}/roles`, {
        user: owner,
        body: { name: `${IMG}${RTL}`, color: '#aa3355', permissions: toWire(P.SEND_MESSAGES), position: 1 },
      }),
      201,
    );
    await ok(api(server, 'PUT', `/api/guilds/${guildId}/members/${member.id}/roles/${role.id}`, { user: owner }), 204);
    for (const content of messages)
      await ok(api(server, 'POST', `/api/channels/${channelId}/messages`, { user: member, body: { content } }), 201);
    const upload = await fetch(`${server.url}/api/channels/${channelId}/attachments`, {
      method: 'POST',
      headers: { ...member.headers, 'content-type': 'image/png', 'x-filename': `${IMG}.png` },
      body: PNG,
    });
    expect(upload.status).toBe(201);
    const attachment = (await upload.json()) as { id: string; filename: string };
    expect(attachment.filename).toContain('<img');
    await ok(
      api(server, 'POST', `/api/channels/${channelId}/messages`, {
        user: member,
        body: { content: 'with a file', attachment_ids: [attachment.id] },
      }),
      201,
    );
    viewer = await newPerson(browser, server, { refreshToken: owner.refreshToken });
    Object.assign(suite.people, { viewer });
  });

  it('shows every payload as literal text, with no element, link, dialog or request made from it', async () => {
    const page = viewer.page;
    const res = await page.goto(`/channels/${guildId}/${channelId}`);
    expect(res?.headers()['content-security-policy']).toBe(WEB_CSP);
    await messageRows(page).filter({ hasText: 'with a file' }).waitFor();

    // Messages: the exact text, as text.
    const contents = await messageRows(page).locator('.content').allTextContents();
    for (const m of messages) expect(contents).toContain(m);
    // Names: guild, channel, channel topic, role, display names, filename. The member list loads on
    // its own request after the messages: wait for both members.
    await page.getByRole('complementary', { name: 'Members' }).locator('button.member').nth(1).waitFor();
    const body = (await page.locator('body').textContent()) ?? '';
    for (const text of [`${SCRIPT} guild`, IMG, JS_LINK, `${IMG}${RTL}`, `${RTL}${SCRIPT}`.slice(0, 64), `${IMG}.png`])
      expect(body).toContain(text);
    await page.getByRole('img', { name: `${IMG}.png` }).waitFor();

    const dom = await page.evaluate(() => {
      const d = (globalThis as any).document;
      return {
        scripts: d.scripts.length,
        iframes: d.querySelectorAll('iframe').length,
        xImages: d.querySelectorAll('img[src="x"], img[onerror]').length,
        jsLinks: [...d.querySelectorAll('a')].filter((a: any) => !/^https?:/.test(a.protocol)).length,
        handlers: [...d.querySelectorAll('*')].filter((e: any) =>
          [...e.attributes].some((a: any) => a.name.startsWith('on')),
        ).length,
      };
    });
    expect(dom).toEqual({ scripts: 1, iframes: 0, xImages: 0, jsLinks: 0, handlers: 0 });
    expect(viewer.dialogs).toEqual([]);
    expect(foreignRequests(viewer, server)).toEqual([]);
    expect(viewer.requests.filter((u) => new URL(u).pathname === '/x')).toEqual([]);
    expect(viewer.violations).toEqual([]);
    expect(viewer.pageErrors).toEqual([]);
  });

  it('refuses HTML and script sinks through the CSP (Trusted Types), and reports them', async () => {
    const page = viewer.page;
    const outcome = await page.evaluate(() => {
      const w = globalThis as any;
      const tries: Record<string, string> = {};
      const attempt = (name: string, fn: () => void) => {
        try {
          fn();
          tries[name] = 'allowed';
        } catch (e) {
          tries[name] = (e as Error).name;
        }
      };
      attempt('innerHTML', () => {
        w.document.body.insertAdjacentElement('beforeend', w.document.createElement('div')).innerHTML = '<b>x</b>';
      });
      attempt('script text', () => {
        const s = w.document.createElement('script');
        s.textContent = 'globalThis.__pwned = true';
        w.document.body.append(s);
      });
      return { tries, pwned: Boolean(w.__pwned) };
    });
    expect(outcome.tries).toEqual({ innerHTML: 'TypeError', 'script text': 'TypeError' });
    expect(outcome.pwned).toBe(false);
    await expect
      .poll(() => viewer.violations.some((v) => /trusted-types|require-trusted-types-for/.test(v)))
      .toBe(true);
  });
});
