/**
 * Voice and E2EE parts of `npm run bench:web` (issue 15):
 * 4. Click on a voice channel → the other side heard (the first received level above silence in the
 *    page's speaking indicator), median of BENCH_RUNS fresh joins; target < 1 s on loopback.
 * 5. Page CPU while two people talk for BENCH_VOICE_SECONDS (default 60; the issue asks for 5 minutes,
 *    set 300 for that), with E2EE voice off and on: main-thread task time per wall second from the
 *    DevTools Performance domain (the frame transform runs on the page's thread; WebRTC's own encode and
 *    decode threads are the same either way).
 * 6. The JS (and wasm) a browser downloads for DMs and for voice, gzip.
 */
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { launchBrowser, toneMicArgs } from '../test/support/browser.js';
import { api, createUser, type TestUser } from '../test/support/factories.js';
import { startTestServer, type TestServer } from '../test/support/server.js';

const VOICE_ENV = {
  VOICECHAT_LOG_LEVEL: 'warn',
  VOICECHAT_RATE_LIMIT_SCALE: '1000',
  VOICECHAT_VOICE: 'on',
  VOICECHAT_RTC_PORT: '0',
  VOICECHAT_RTC_LISTEN_IP: '127.0.0.1',
  VOICECHAT_RTC_WORKERS: '1',
};

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export function lazyChunkSizes(webDir: string) {
  const dir = path.join(webDir, 'assets');
  const files = readdirSync(dir);
  const gz = (prefix: string, ext: string) =>
    files
      .filter((f) => f.startsWith(prefix) && f.endsWith(ext))
      .reduce((n, f) => n + statSync(path.join(dir, `${f}.gz`)).size, 0);
  const voice = gz('session-', '.js');
  const dmsJs = gz('device-', '.js') + gz('olm.web-', '.js') + gz('index.esm-', '.js');
  const olmWasm = gz('olm-', '.wasm');
  return { voice_js_gzip: voice, dm_js_gzip: dmsJs, dm_wasm_gzip: olmWasm };
}

async function person(browser: Browser, server: TestServer, user: TestUser): Promise<Page> {
  const context = await browser.newContext({ baseURL: server.url, viewport: { width: 1280, height: 800 } });
  await context.addInitScript((token: string) => {
    const w = globalThis as any;
    if (!w.localStorage.getItem('voicechat.refresh_token')) w.localStorage.setItem('voicechat.refresh_token', token);
  }, user.refreshToken);
  return context.newPage();
}

const voiceLink = (page: Page, name: string) =>
  page.getByRole('navigation', { name: 'Channels' }).getByRole('link', { name: new RegExp(`^♪?\\s*${name}`) });

async function joinByClick(page: Page, name: string, password?: string): Promise<void> {
  await voiceLink(page, name).click();
  if (password) {
    const form = page.getByRole('form', { name: 'Unlock encryption keys' });
    await form.getByLabel('Password').fill(password);
    await form.getByRole('button', { name: 'Unlock' }).click();
  }
  await page.getByRole('status').filter({ hasText: 'Voice connected' }).waitFor({ timeout: 30_000 });
}

/** Main-thread busy share while the call runs for `seconds`. */
async function pageCpu(page: Page, seconds: number): Promise<number> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Performance.enable');
  const read = async () => {
    const { metrics } = await cdp.send('Performance.getMetrics');
    const get = (n: string) => metrics.find((m: { name: string }) => m.name === n)?.value ?? 0;
    return { task: get('TaskDuration'), t: get('Timestamp') };
  };
  const a = await read();
  await page.waitForTimeout(seconds * 1000);
  const b = await read();
  await cdp.detach();
  return (b.task - a.task) / (b.t - a.t);
}

export async function benchVoice(runs: number, seconds: number) {
  const server = await startTestServer({ env: VOICE_ENV });
  const browser = await launchBrowser(toneMicArgs(440));
  const owner = await createUser(server);
  const guild = (await api(server, 'POST', '/api/guilds', { user: owner, body: { name: 'Voice bench' } })).body;
  const invite = (await api(server, 'POST', `/api/guilds/${guild.id}/invites`, { user: owner, body: {} })).body;
  const secret = (
    await api(server, 'POST', `/api/guilds/${guild.id}/channels`, {
      user: owner,
      body: { name: 'Secret', type: 'voice' },
    })
  ).body;
  await api(server, 'PATCH', `/api/channels/${secret.id}`, { user: owner, body: { e2ee_voice: true } });
  const url = `/channels/${guild.id}`;
  const speaker = await person(browser, server, owner);
  await speaker.goto(url);
  await joinByClick(speaker, 'General');

  // 4. Click → first audio heard, each run a fresh listener (the join rate limit is per user).
  const joinMs: number[] = [];
  for (let run = 0; run < runs; run++) {
    const u = await createUser(server);
    await api(server, 'POST', `/api/invites/${invite.code}/join`, { user: u });
    const page = await person(browser, server, u);
    await page.goto(url);
    await voiceLink(page, 'General').waitFor();
    const start = await page.evaluate(() => performance.now());
    await voiceLink(page, 'General').click();
    await page.waitForFunction(
      (id: string) => {
        const el = (globalThis as any).document.querySelector(`li.voice-person[data-user-id="${id}"]`);
        return Number(el?.getAttribute('data-level') ?? 0) > 0.01;
      },
      owner.id,
      { polling: 'raf', timeout: 20_000 },
    );
    joinMs.push((await page.evaluate(() => performance.now())) - start);
    await page.context().close();
    await new Promise((r) => setTimeout(r, 300));
  }

  // 5. CPU with E2EE off and on (two people talking: both fake microphones play the tone).
  const listenerUser = await createUser(server);
  await api(server, 'POST', `/api/invites/${invite.code}/join`, { user: listenerUser });
  const listener = await person(browser, server, listenerUser);
  await listener.goto(url);
  await joinByClick(listener, 'General');
  await listener.waitForTimeout(2_000);
  const cpuOff = await pageCpu(listener, seconds);
  await joinByClick(speaker, 'Secret', owner.password);
  await new Promise((r) => setTimeout(r, 1_100));
  await joinByClick(listener, 'Secret', listenerUser.password);
  await listener.waitForTimeout(2_000);
  const cpuOn = await pageCpu(listener, seconds);

  await browser.close();
  await server.stop();
  return {
    voice_click_to_heard_ms: { median: median(joinMs), runs: joinMs.map(Math.round) },
    page_cpu_e2ee_off: cpuOff,
    page_cpu_e2ee_on: cpuOn,
    cpu_seconds: seconds,
  };
}
