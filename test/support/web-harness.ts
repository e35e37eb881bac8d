/**
 * Runs client modules in real Chromium without our server: Vite builds a test entry from web/src in
 * memory (the same bundler and settings as the app), and the page is served from `http://localhost`
 * through Playwright's request routing with the app's exact CSP (DESIGN.md §13), so WebAssembly,
 * WebCrypto and Trusted Types behave as they do in the app. Nothing touches the network.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { build, type Rolldown } from 'vite';
import { WEB_CSP } from '../../src/http/static-web.js';
import { launchBrowser, MEDIA_ARGS } from './browser.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../web');
export const HARNESS_ORIGIN = 'http://localhost';

export const launchMediaBrowser = (): Promise<Browser> => launchBrowser(MEDIA_ARGS);

/** Builds `web/src/<entry>` and returns its output files by URL path. */
export async function buildHarness(entry: string): Promise<Map<string, { body: Buffer; type: string }>> {
  const out = (await build({
    configFile: false,
    root,
    logLevel: 'warn',
    build: {
      write: false,
      target: 'es2022',
      modulePreload: { polyfill: false },
      minify: false,
      rollupOptions: { input: path.join(root, 'src', entry), output: { entryFileNames: 'assets/harness.js' } },
    },
  })) as Rolldown.RolldownOutput | Rolldown.RolldownOutput[];
  const files = new Map<string, { body: Buffer; type: string }>();
  for (const o of Array.isArray(out) ? out : [out])
    for (const f of o.output) {
      const body = Buffer.from(f.type === 'chunk' ? f.code : f.source);
      const type = f.fileName.endsWith('.wasm') ? 'application/wasm' : 'text/javascript';
      files.set(`/${f.fileName}`, { body, type });
    }
  files.set('/', {
    body: Buffer.from('<!doctype html><meta charset="utf-8"><script type="module" src="/assets/harness.js"></script>'),
    type: 'text/html',
  });
  return files;
}

export interface HarnessPage {
  context: BrowserContext;
  page: Page;
  /** Every URL requested, CSP / Trusted Types violations and page errors. */
  requests: string[];
  violations: string[];
  pageErrors: string[];
  reload(): Promise<void>;
}

export async function openHarness(
  browser: Browser,
  files: Map<string, { body: Buffer; type: string }>,
): Promise<HarnessPage> {
  const context = await browser.newContext();
  const requests: string[] = [];
  const violations: string[] = [];
  const pageErrors: string[] = [];
  await context.route('**/*', async (route) => {
    const url = new URL(route.request().url());
    requests.push(url.href);
    const f = url.origin === HARNESS_ORIGIN ? files.get(url.pathname) : undefined;
    if (!f) return route.fulfill({ status: 404, body: 'not found' });
    return route.fulfill({
      status: 200,
      body: f.body,
      headers: { 'Content-Type': f.type, 'Content-Security-Policy': WEB_CSP, 'X-Content-Type-Options': 'nosniff' },
    });
  });
  const page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Trusted Type/i.test(m.text())) violations.push(m.text());
  });
  const load = async () => {
    await page.goto(`${HARNESS_ORIGIN}/`);
    await page.waitForFunction(() => (globalThis as any).harnessReady === true);
  };
  await load();
  return { context, page, requests, violations, pageErrors, reload: load };
}
