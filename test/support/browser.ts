/**
 * Real Chromium (Debian's /usr/bin/chromium) driven by playwright-core, for the web client's tests:
 * one browser process per test file, one context per person. Every person records the requests the
 * page makes, dialogs that open, CSP / Trusted Types violations and page errors, so tests can assert
 * that nothing left the server's origin and nothing was blocked. Screenshots go to test-output/web/.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { type StartOptions, startTestServer, type TestServer } from './server.js';

export const CHROMIUM_PATH = process.env.VOICECHAT_TEST_CHROMIUM ?? '/usr/bin/chromium';
export const SCREENSHOT_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../test-output/web');

/** The flags that keep Chromium off the network (machine notes: no background requests at all). */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-default-apps',
  '--disable-domain-reliability',
  '--disable-client-side-phishing-detection',
  '--disable-dev-shm-usage',
  '--no-pings',
];

/** For voice: a fake microphone (a tone) granted without a prompt, autoplay, loopback ICE with real addresses. */
export const MEDIA_ARGS = [
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--allow-loopback-in-peer-connection',
  '--autoplay-policy=no-user-gesture-required',
  '--disable-features=WebRtcHideLocalIpsWithMdns',
];

/**
 * MEDIA_ARGS plus a fake microphone that plays a steady sine at `hz` (a WAV written once to the
 * system temp dir; Chromium loops it), so tests can tell the microphone's sound from anything else.
 */
export function toneMicArgs(hz = 440): string[] {
  const rate = 48_000;
  const samples = rate * 2;
  const wav = Buffer.alloc(44 + samples * 2);
  wav.write('RIFF', 0);
  wav.writeUInt32LE(36 + samples * 2, 4);
  wav.write('WAVEfmt ', 8);
  wav.writeUInt32LE(16, 16);
  wav.writeUInt16LE(1, 20);
  wav.writeUInt16LE(1, 22);
  wav.writeUInt32LE(rate, 24);
  wav.writeUInt32LE(rate * 2, 28);
  wav.writeUInt16LE(2, 32);
  wav.writeUInt16LE(16, 34);
  wav.write('data', 36);
  wav.writeUInt32LE(samples * 2, 40);
  for (let i = 0; i < samples; i++)
    wav.writeInt16LE(Math.round(12_000 * Math.sin((2 * Math.PI * hz * i) / rate)), 44 + i * 2);
  const file = path.join(os.tmpdir(), `voicechat-tone-${hz}.wav`);
  writeFileSync(file, wav);
  return [...MEDIA_ARGS, `--use-file-for-fake-audio-capture=${file}`];
}

export function launchBrowser(extraArgs: string[] = []): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH))
    throw new Error(`${CHROMIUM_PATH} is missing: install Debian's chromium (apt-get install chromium)`);
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: [...CHROMIUM_ARGS, ...extraArgs] });
}

export interface Person {
  context: BrowserContext;
  page: Page;
  /** Every URL the page requested (HTTP and WebSocket). */
  requests: string[];
  dialogs: string[];
  /** CSP and Trusted Types violations reported by the page. */
  violations: string[];
  pageErrors: string[];
  close(): Promise<void>;
}

export interface PersonOptions {
  viewport?: { width: number; height: number };
  /** A refresh token to start signed in with (the app restores the session from it, as after a reload). */
  refreshToken?: string;
  colorScheme?: 'light' | 'dark';
}

export async function newPerson(browser: Browser, server: TestServer, opts: PersonOptions = {}): Promise<Person> {
  const context = await browser.newContext({
    baseURL: server.url,
    viewport: opts.viewport ?? { width: 1280, height: 800 },
    colorScheme: opts.colorScheme ?? 'light',
    permissions: ['clipboard-read', 'clipboard-write'],
  });
  const requests: string[] = [];
  const dialogs: string[] = [];
  const violations: string[] = [];
  const pageErrors: string[] = [];
  context.on('request', (r) => requests.push(r.url()));
  await context.exposeBinding('__reportViolation', (_src, text: string) => {
    violations.push(text);
  });
  // Runs in the page (DOM types are not part of the Node test build, hence `globalThis as any`).
  await context.addInitScript(() => {
    const w = globalThis as any;
    w.document.addEventListener('securitypolicyviolation', (e: any) => {
      w.__reportViolation(`${e.violatedDirective} ${e.blockedURI} ${e.sample}`);
    });
  });
  if (opts.refreshToken) {
    await context.addInitScript((token: string) => {
      const w = globalThis as any;
      // Once per browser context (every tab shares localStorage), so a later sign-out stays signed out.
      if (!w.localStorage.getItem('test-seeded')) {
        w.localStorage.setItem('test-seeded', '1');
        w.localStorage.setItem('voicechat.refresh_token', token);
      }
    }, opts.refreshToken);
  }
  const page = await context.newPage();
  page.on('websocket', (ws) => requests.push(ws.url()));
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Trusted Type/i.test(m.text())) violations.push(m.text());
  });
  return { context, page, requests, dialogs, violations, pageErrors, close: () => context.close() };
}

/** Requests that went anywhere but the test server's own origin. */
export function foreignRequests(person: Person, server: TestServer): string[] {
  const http = new URL(server.url).origin;
  const ws = `ws://${new URL(server.url).host}/`;
  return person.requests.filter((u) => !u.startsWith(`${http}/`) && !u.startsWith(ws) && !/^(blob|data):/.test(u));
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const file = path.join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path: file, fullPage: false });
  return file;
}

/** Signs up through the page's own form (optionally at /invite/<code>). */
export async function registerInBrowser(
  page: Page,
  user: { username: string; password: string; displayName?: string },
  inviteCode?: string,
): Promise<void> {
  await page.goto(inviteCode ? `/invite/${inviteCode}` : '/register');
  const form = page.getByRole('form', { name: 'Create an account' });
  await form.getByLabel('Username').fill(user.username);
  if (user.displayName) await form.getByLabel('Display name (optional)').fill(user.displayName);
  await form.getByLabel('Password', { exact: true }).fill(user.password);
  await form.getByRole('button', { name: 'Create account' }).click();
}

export async function signInInBrowser(page: Page, username: string, password: string): Promise<void> {
  await page.goto('/login');
  const form = page.getByRole('form', { name: 'Sign in' });
  await form.getByLabel('Username').fill(username);
  await form.getByLabel('Password').fill(password);
  await form.getByRole('button', { name: 'Sign in' }).click();
}

/** Types into the open channel's composer and presses Enter. */
export async function sendInBrowser(page: Page, text: string): Promise<void> {
  const box = page.getByRole('textbox', { name: /^Message #/ });
  await box.fill(text);
  await box.press('Enter');
}

/** The rendered message rows of the open channel. */
export const messageRows = (page: Page) => page.getByRole('log').locator('article.message');

/** Screenshots every person's page when the current test failed (for the CI log's test-output). */
export async function screenshotIfFailed(
  ctx: { task: { name: string; result?: { state?: string } } },
  people: Record<string, Person | undefined>,
): Promise<void> {
  if (ctx.task.result?.state !== 'fail') return;
  for (const [who, p] of Object.entries(people))
    if (p) await screenshot(p.page, `failed-${ctx.task.name.replace(/\W+/g, '-').slice(0, 60)}-${who}`).catch(() => {});
}

export interface BrowserSuite {
  server: TestServer;
  browser: Browser;
  /** The people of the suite, by name (screenshotted when a test fails). */
  people: Record<string, Person>;
}

/**
 * A test file's fixture: a real server (throwaway database) and one Chromium, started before the
 * file's own hooks and closed after them; failed tests leave a screenshot per person.
 */
export function browserSuite(opts: StartOptions & { browserArgs?: string[] } = {}): BrowserSuite {
  const suite = { people: {} } as BrowserSuite;
  beforeAll(async () => {
    [suite.server, suite.browser] = await Promise.all([startTestServer(opts), launchBrowser(opts.browserArgs)]);
  });
  afterEach((ctx) => screenshotIfFailed(ctx, suite.people));
  afterAll(async () => {
    await suite.browser?.close();
    await suite.server?.stop();
  });
  return suite;
}
