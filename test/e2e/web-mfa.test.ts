/**
 * Two-factor in the browser: enrol from the settings page (the test reads the secret the page shows
 * beside its locally drawn QR code), sign out, sign in with a TOTP the test computes itself, then with
 * a backup code (which works once). Tokens: the access token never reaches storage, and nothing in
 * storage signs in after signing out.
 */
import { authenticator } from 'otplib';
import type { Browser, Page } from 'playwright-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { browserSuite, newPerson, type Person } from '../support/browser.js';
import { api, createUser, type TestUser } from '../support/factories.js';
import type { TestServer } from '../support/server.js';

const codeAt = (secret: string, step: number) => authenticator.clone({ epoch: step * 30_000 }).generate(secret);
const step = () => Math.floor(Date.now() / 30_000);

/** Everything the page keeps in Web Storage, as one string. */
const storageDump = (page: Page) =>
  page.evaluate(() => {
    const w = globalThis as any;
    const dump = (s: any) => JSON.stringify(Object.fromEntries(Object.keys(s).map((k: string) => [k, s.getItem(k)])));
    return dump(w.localStorage) + dump(w.sessionStorage);
  });

async function signIn(page: Page, user: TestUser, code: string) {
  await page.goto('/login');
  const form = page.getByRole('form', { name: 'Sign in' });
  await form.getByLabel('Username').fill(user.username);
  await form.getByLabel('Password').fill(user.password);
  await form.getByRole('button', { name: 'Sign in' }).click();
  const codeBox = form.getByLabel('Code from your authenticator app, or a backup code');
  await codeBox.fill(code);
  await form.getByRole('button', { name: 'Verify' }).click();
}

describe('web client: two-factor sign-in', { timeout: 60_000 }, () => {
  const suite = browserSuite({ env: { VOICECHAT_RATE_LIMIT_SCALE: '20' } });
  let server: TestServer;
  let browser: Browser;
  let person: Person;
  let user: TestUser;
  let secret = '';
  let backupCodes: string[] = [];
  let enrolStep = 0;

  beforeAll(async () => {
    ({ server, browser } = suite);
    user = await createUser(server);
    person = await newPerson(browser, server, { refreshToken: user.refreshToken });
    Object.assign(suite.people, { person });
  });

  it('enrols from the settings page with the secret shown beside the QR code', async () => {
    const page = person.page;
    await page.goto('/settings');
    await page.getByRole('heading', { name: 'Two-factor authentication' }).waitFor();
    await page.getByRole('button', { name: 'Set up two-factor' }).click();
    await page.getByLabel('Your password').fill(user.password);
    await page.getByRole('button', { name: 'Continue' }).click();

    const qr = page.getByRole('img', { name: 'QR code for your authenticator app' });
    await qr.waitFor();
    // Drawn locally on a canvas: dark modules exist.
    await expect
      .poll(() =>
        qr.evaluate((c: any) => {
          const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
          let dark = 0;
          for (let i = 0; i < px.length; i += 4) if (px[i] < 128) dark++;
          return c.width > 0 && dark > 100;
        }),
      )
      .toBe(true);
    secret = ((await page.locator('code.secret').textContent()) ?? '').replace(/\s+/g, '');
    expect(secret).toMatch(/^[A-Z2-7]{16,}$/);

    // A wrong code is refused with a clear message.
    await page.getByLabel('Code from the app').fill('000000');
    await page.getByRole('button', { name: 'Turn on' }).click();
    await page.getByRole('alert').filter({ hasText: 'That code is wrong or was already used' }).waitFor();

    enrolStep = step();
    await page.getByLabel('Code from the app').fill(codeAt(secret, enrolStep));
    await page.getByRole('button', { name: 'Turn on' }).click();
    const list = page.getByRole('list', { name: 'Backup codes' });
    await list.waitFor();
    backupCodes = (await list.locator('code').allTextContents()).map((c) => c.trim());
    expect(backupCodes).toHaveLength(10);
    await page.getByRole('button', { name: 'I have saved them' }).click();
    await expect.poll(() => list.count()).toBe(0);
    await expect.poll(() => page.locator('#mfa-h + p strong').textContent()).toBe('on');
    const me = await api(server, 'GET', '/auth/me', { user });
    expect(me.body.mfa_enabled).toBe(true);
  });

  it('keeps the access token out of storage, and nothing there signs in after signing out', async () => {
    const page = person.page;
    const signedIn = await storageDump(page);
    expect(signedIn).not.toMatch(/eyJ[\w-]+\.[\w-]+\.[\w-]+/); // no JWT anywhere in storage
    const stored = JSON.parse(signedIn.slice(0, signedIn.indexOf('}') + 1))['voicechat.refresh_token'];
    expect(stored).toBeTruthy();

    await page.getByRole('button', { name: 'Sign out', exact: true }).click();
    await page.getByRole('form', { name: 'Sign in' }).waitFor();
    const after = await storageDump(page);
    expect(after).not.toContain(stored);
    expect(after).not.toMatch(/eyJ[\w-]+\.[\w-]+\.[\w-]+/);
    // The server ended that session too: the old refresh token is dead.
    const refresh = await api(server, 'POST', '/auth/refresh', { body: { refresh_token: stored } });
    expect(refresh.status).toBe(401);
    // A reload stays signed out.
    await page.reload();
    await page.getByRole('form', { name: 'Sign in' }).waitFor();
  });

  it('signs in with a TOTP code computed by the test', async () => {
    const page = person.page;
    // The enrolment step was used once (replays are refused): the next step is inside the window.
    await signIn(page, user, codeAt(secret, Math.max(step(), enrolStep + 1)));
    await page.getByRole('navigation', { name: 'Guilds' }).waitFor();
    await page.goto('/settings');
    await page.getByRole('button', { name: 'Sign out', exact: true }).click();
    await page.getByRole('form', { name: 'Sign in' }).waitFor();
  });

  it('signs in with a backup code, which works only once', async () => {
    const page = person.page;
    await signIn(page, user, backupCodes[0]!);
    await page.getByRole('navigation', { name: 'Guilds' }).waitFor();
    await page.goto('/settings');
    await page.getByRole('button', { name: 'Sign out', exact: true }).click();

    await signIn(page, user, backupCodes[0]!);
    await page.getByRole('alert').filter({ hasText: 'That code is wrong or was already used' }).waitFor();
    expect(person.pageErrors).toEqual([]);
    expect(person.violations).toEqual([]);
  });

  it('signs out everywhere in the browser when its refresh token is replayed (TOKEN_REUSED)', async () => {
    const page = person.page;
    await signIn(page, user, backupCodes[1]!);
    await page.getByRole('navigation', { name: 'Guilds' }).waitFor();
    const second = await person.context.newPage(); // another tab of the same browser
    await second.goto('/settings');
    await second.getByRole('heading', { name: 'Sessions' }).waitFor();
    // Someone else uses the stored refresh token first: the browser's next refresh is a replay.
    const stolen = JSON.parse(await storageDump(page).then((d) => d.slice(0, d.indexOf('}') + 1)))[
      'voicechat.refresh_token'
    ];
    expect((await api(server, 'POST', '/auth/refresh', { body: { refresh_token: stolen } })).status).toBe(200);
    await page.reload();
    await page.getByText('a sign-in token was used twice').waitFor();
    await page.getByRole('form', { name: 'Sign in' }).waitFor();
    // The other tab follows at once, and nothing in storage signs in any more.
    await second.getByRole('form', { name: 'Sign in' }).waitFor();
    expect(await storageDump(page)).not.toContain('voicechat.refresh_token');
    await page.reload();
    await page.getByRole('form', { name: 'Sign in' }).waitFor();
  });
});
