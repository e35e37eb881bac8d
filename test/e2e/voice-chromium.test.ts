/**
 * Voice in a real browser: Debian's Chromium (headless, fake microphone, loopback only) loads a small
 * page that bundles mediasoup-client (built here with Vite) and speaks DESIGN.md §8 over the real
 * gateway. Chromium A produces its fake microphone; Chromium B consumes it and its inbound-rtp stats
 * count packets; a Node wrtc client hears non-silent audio from the browser's Opus; A leaves and B
 * is told. The page comes from a small static server on loopback (a page fulfilled by Playwright's
 * routing counts as a public origin and Chromium's local-network checks block its socket to
 * 127.0.0.1); the voice server lists that origin in VOICECHAT_ALLOWED_ORIGINS, as an install whose
 * client is hosted elsewhere would. Every request the pages make stays on those two loopback origins.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../support/browser.js';
import { seedGuild } from '../support/guilds.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { gatewaySignal, VoiceTestClient } from '../support/voice-client.js';
import { GatewayClient } from '../support/ws.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const FAKE_MEDIA_ARGS = [
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--allow-loopback-in-peer-connection',
];

/** The page script with mediasoup-client, as one IIFE. */
async function bundlePage(): Promise<string> {
  const out = await build({
    configFile: false,
    logLevel: 'warn',
    build: {
      write: false,
      minify: false,
      lib: {
        entry: path.join(here, '../fixtures/voice-page/main.js'),
        formats: ['iife'],
        name: 'VoiceTestPage',
        fileName: () => 'voice.js',
      },
    },
  });
  const result = (Array.isArray(out) ? out[0] : out) as { output: { code?: string }[] };
  const code = result.output[0]?.code;
  if (!code) throw new Error('the voice test page did not build');
  return code;
}

describe('voice in Chromium over the gateway', { timeout: 60_000 }, () => {
  let server: TestServer;
  let browser: Browser;
  let script: string;
  const contexts: BrowserContext[] = [];
  const requests: string[] = [];
  let nodeClient: VoiceTestClient | undefined;
  let nodeSocket: GatewayClient | undefined;
  let pages: Server;
  let pageOrigin: string;

  beforeAll(async () => {
    script = await bundlePage();
    // The page server knows the voice server's address only once it runs: the page asks for it.
    let wsUrl = '';
    pages = createServer((req, res) => {
      if (req.url === '/voice.js') {
        res.writeHead(200, { 'content-type': 'text/javascript' }).end(script);
      } else if (req.url === '/config.json') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ wsUrl }));
      } else {
        res
          .writeHead(200, { 'content-type': 'text/html' })
          .end('<!doctype html><meta charset="utf-8"><title>voice test</title><script src="/voice.js"></script>');
      }
    });
    await new Promise<void>((resolve) => pages.listen(0, '127.0.0.1', resolve));
    pageOrigin = `http://127.0.0.1:${(pages.address() as AddressInfo).port}`;
    [server, browser] = await Promise.all([
      startTestServer({
        env: {
          VOICECHAT_VOICE: 'on',
          VOICECHAT_RTC_PORT: '0',
          VOICECHAT_RTC_LISTEN_IP: '127.0.0.1',
          VOICECHAT_RTC_WORKERS: '1',
          VOICECHAT_ALLOWED_ORIGINS: pageOrigin,
        },
      }),
      chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: [...CHROMIUM_ARGS, ...FAKE_MEDIA_ARGS] }),
    ]);
    wsUrl = server.wsUrl;
  });
  afterAll(async () => {
    nodeClient?.close();
    nodeSocket?.close();
    await browser?.close();
    await server?.stop();
    await new Promise((resolve) => pages?.close(resolve));
  });

  async function openPage(): Promise<Page> {
    const context = await browser.newContext({ baseURL: pageOrigin });
    contexts.push(context);
    context.on('request', (r) => requests.push(r.url()));
    const page = await context.newPage();
    page.on('websocket', (ws) => requests.push(ws.url()));
    await page.goto('/');
    await page.waitForFunction(() => Boolean((globalThis as any).voice));
    return page;
  }

  it('a browser speaks, another browser receives RTP packets, a Node client hears it, leaving is seen', async () => {
    const g = await seedGuild(server);
    const ch = g.voiceChannelId;
    const [a, b] = await Promise.all([openPage(), openPage()]);

    const joinedA = await a.evaluate(([t, c]) => (globalThis as any).voice.join(t, c), [g.owner.accessToken, ch]);
    expect(joinedA.participants).toEqual([]);
    expect(joinedA.handler).toMatch(/^Chrome/);
    const producerId: string = await a.evaluate(() => (globalThis as any).voice.speak());

    const joinedB = await b.evaluate(([t, c]) => (globalThis as any).voice.join(t, c), [g.member.accessToken, ch]);
    expect(joinedB.participants).toEqual([
      { user_id: g.owner.id, muted: false, deafened: false, server_muted: false, producer_ids: [producerId] },
    ]);
    await b.evaluate((id) => (globalThis as any).voice.listen(id), producerId);
    await expect
      .poll(async () => (await b.evaluate(() => (globalThis as any).voice.inbound()))[0]?.packetsReceived ?? 0, {
        timeout: 15_000,
        interval: 250,
      })
      .toBeGreaterThan(50);
    const stats = (await b.evaluate(() => (globalThis as any).voice.inbound()))[0];
    expect(stats.bytesReceived).toBeGreaterThan(1000);

    // The same browser Opus decoded in libwebrtc under Node: Chromium's fake microphone beeps.
    const { client } = await GatewayClient.ready(server.wsUrl, g.admin.accessToken);
    nodeSocket = client;
    nodeClient = new VoiceTestClient(gatewaySignal(client, ch));
    await nodeClient.join();
    const consumerId = await nodeClient.receive(producerId);
    expect(await nodeClient.heard(consumerId, 300, 15_000)).toBeGreaterThan(300);

    // A leaves: B's page is told (its producer closed, then the user left).
    await a.evaluate(() => (globalThis as any).voice.leave());
    await expect
      .poll(
        async () =>
          (await b.evaluate(() => (globalThis as any).voice.events.map((e: { type: string }) => e.type))) as string[],
        { timeout: 5000 },
      )
      .toEqual(expect.arrayContaining(['voice_producer_closed', 'voice_user_left']));

    const foreign = requests.filter((u) => !u.startsWith(`${pageOrigin}/`) && !u.startsWith(`${server.wsUrl}`));
    expect(foreign).toEqual([]);
    expect(requests).toContain(server.wsUrl);
  });
});
