/**
 * Web client benchmark (`npm run bench:web`), in headless Debian Chromium on loopback:
 *
 * 1. JS of the first page load, gzip: the entry script and its static imports (what index.html
 *    loads), against the target of 100 KB; lazily loaded chunks (QR code, …) listed separately.
 * 2. Navigation → chat view showing the channel's last 50 messages (the newest one rendered), cold
 *    (fresh browser context, empty cache) and warm (reload), median of BENCH_RUNS; target < 500 ms.
 * 3. Scrolling from the newest to the oldest of 10,000 messages (history paged in as the top comes
 *    near), 400 px per frame: the longest frame (requestAnimationFrame gaps) and the long tasks
 *    (PerformanceObserver, > 50 ms) seen; target: no frame over 50 ms.
 *
 * 4–6. Voice and E2EE (bench/web-voice.ts): click on a voice channel → the other side heard; page CPU
 *    with E2EE voice off and on; the JS loaded for DMs and for voice.
 *
 * Options (env): BENCH_RUNS (default 5), BENCH_HISTORY (default 10000), BENCH_VOICE_SECONDS (default
 * 60), BENCH_ONLY_VOICE=1 (parts 4–6 only).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import type { Db } from '../src/db/knex.js';
import { newId, nowMs } from '../src/ids.js';
import { launchBrowser } from '../test/support/browser.js';
import { api, createUser } from '../test/support/factories.js';
import { startTestServer } from '../test/support/server.js';
import { benchVoice, lazyChunkSizes } from './web-voice.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const WEB = path.join(ROOT, 'dist', 'web');
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const HISTORY = Number(process.env.BENCH_HISTORY ?? 10_000);

const kb = (n: number) => Math.round((n / 1024) * 10) / 10;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Entry script + its static imports (modulepreload), and the lazy chunks, with gzip sizes. */
function bundleSizes() {
  const html = readFileSync(path.join(WEB, 'index.html'), 'utf8');
  const initial = [
    ...html.matchAll(/<script[^>]+src="([^"]+\.js)"/g),
    ...html.matchAll(/<link[^>]+rel="modulepreload"[^>]+href="([^"]+\.js)"/g),
  ].map((m) => m[1]!);
  const css = [...html.matchAll(/<link[^>]+rel="stylesheet"[^>]+href="([^"]+\.css)"/g)].map((m) => m[1]!);
  const gz = (url: string) => statSync(path.join(WEB, `${url}.gz`)).size;
  const raw = (url: string) => statSync(path.join(WEB, url)).size;
  const all = execFileSync('ls', [path.join(WEB, 'assets')], { encoding: 'utf8' })
    .split('\n')
    .filter((f) => f.endsWith('.js'))
    .map((f) => `/assets/${f}`);
  return {
    initial_js: initial.map((u) => ({ file: u, bytes: raw(u), gzip: gz(u) })),
    initial_js_gzip: initial.reduce((n, u) => n + gz(u), 0),
    initial_css_gzip: css.reduce((n, u) => n + gz(u), 0),
    lazy_js: all.filter((u) => !initial.includes(u)).map((u) => ({ file: u, bytes: raw(u), gzip: gz(u) })),
  };
}

async function seedHistory(db: Db, channelId: string, authors: string[], n: number): Promise<void> {
  const base = nowMs() - n * 1000;
  for (let i = 0; i < n; i += 1000) {
    const rows: Record<string, unknown>[] = [];
    for (let j = i; j < Math.min(n, i + 1000); j++) {
      // Mixed heights: short lines, long paragraphs that wrap, multi-line messages.
      const content =
        j % 13 === 0
          ? `message ${j}\nwith a second line\nand a third`
          : j % 7 === 0
            ? `message ${j}: ${'a longer message that wraps over more than one line on a desktop window. '.repeat(3)}`
            : `message ${j}`;
      rows.push({
        id: newId(),
        channel_id: channelId,
        author_id: authors[j % authors.length],
        content,
        encrypted: false,
        created_at: base + j * 1000,
      });
    }
    await db.transaction(async (trx) => {
      for (let k = 0; k < rows.length; k += 100) await trx('messages').insert(rows.slice(k, k + 100));
    });
  }
}

interface ScrollResult {
  seconds: number;
  frames: number;
  max_frame_ms: number;
  p99_frame_ms: number;
  frames_over_50ms: number;
  long_tasks: number;
  longest_task_ms: number;
  max_rows_in_dom: number;
  reached_oldest: boolean;
}

/**
 * A signed-in page without the tests' instrumentation (request log, violation hooks): only the
 * refresh token placed in storage before the app starts, as after an earlier visit.
 */
async function signedInPage(browser: Browser, baseURL: string, refreshToken: string): Promise<Page> {
  const context = await browser.newContext({ baseURL, viewport: { width: 1280, height: 800 } });
  await context.addInitScript((token: string) => {
    const w = globalThis as any;
    if (!w.localStorage.getItem('voicechat.refresh_token')) w.localStorage.setItem('voicechat.refresh_token', token);
  }, refreshToken);
  return context.newPage();
}

async function voiceOnly() {
  execFileSync('npm', ['run', '--silent', 'build:web'], { cwd: ROOT, stdio: 'inherit' });
  const lazy = lazyChunkSizes(WEB);
  const voice = await benchVoice(RUNS, Number(process.env.BENCH_VOICE_SECONDS ?? 60));
  printVoice(lazy, voice);
}

function printVoice(lazy: ReturnType<typeof lazyChunkSizes>, voice: Awaited<ReturnType<typeof benchVoice>>) {
  const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
  const rows = [
    ['voice: click → other side heard (median)', `${Math.round(voice.voice_click_to_heard_ms.median)} ms`, '< 1 s'],
    [`voice: page main-thread CPU, E2EE off (${voice.cpu_seconds} s)`, pct(voice.page_cpu_e2ee_off), ''],
    [`voice: page main-thread CPU, E2EE on (${voice.cpu_seconds} s)`, pct(voice.page_cpu_e2ee_on), ''],
    ['voice JS (gzip, on first join)', `${kb(lazy.voice_js_gzip)} KB`, ''],
    ['DM/E2EE JS + olm.wasm (gzip, on unlock)', `${kb(lazy.dm_js_gzip)} KB + ${kb(lazy.dm_wasm_gzip)} KB`, ''],
  ];
  const w = Math.max(...rows.map((r) => r[0]!.length));
  console.log(
    `\nload average ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}\n`,
  );
  for (const [k, v, t] of rows) console.log(`${k!.padEnd(w)}  ${v!.padEnd(24)}  ${t}`);
  console.log(`\n${JSON.stringify({ ...lazy, ...voice }, null, 2)}`);
}

async function main() {
  if (process.env.BENCH_ONLY_VOICE === '1') return voiceOnly();
  execFileSync('npm', ['run', '--silent', 'build:web'], { cwd: ROOT, stdio: 'inherit' });
  const sizes = bundleSizes();

  const server = await startTestServer({ env: { VOICECHAT_LOG_LEVEL: 'warn', VOICECHAT_RATE_LIMIT_SCALE: '1000' } });
  const [owner, other] = await Promise.all([createUser(server), createUser(server)]);
  const guild = (await api(server, 'POST', '/api/guilds', { user: owner, body: { name: 'Bench' } })).body;
  const channelId: string = guild.channels.find((c: { type: string }) => c.type === 'text').id;
  const invite = (await api(server, 'POST', `/api/guilds/${guild.id}/invites`, { user: owner, body: {} })).body;
  await api(server, 'POST', `/api/invites/${invite.code}/join`, { user: other });
  const t0 = performance.now();
  await seedHistory(server.db, channelId, [owner.id, other.id], HISTORY);
  process.stderr.write(`seeded ${HISTORY} messages in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  const newest = `message ${HISTORY - 1}`;
  const url = `/channels/${guild.id}/${channelId}`;
  const browser = await launchBrowser();

  // 2. Navigation → last 50 messages shown.
  const cold: number[] = [];
  const warm: number[] = [];
  const shown = (text: string) =>
    [...(globalThis as any).document.querySelectorAll('article.message .content')].some(
      (e: any) => e.textContent === text,
    );
  for (let run = 0; run < RUNS; run++) {
    // Each run signs in afresh (its own refresh token), as a person opening the app would be.
    const session = await createUser(server);
    await api(server, 'POST', `/api/invites/${invite.code}/join`, { user: session });
    const person = { page: await signedInPage(browser, server.url, session.refreshToken) };
    await person.page.goto(url);
    await person.page.waitForFunction(shown, newest, { polling: 'raf' });
    cold.push(await person.page.evaluate(() => performance.now()));
    await person.page.reload();
    await person.page.waitForFunction(shown, newest, { polling: 'raf' });
    warm.push(await person.page.evaluate(() => performance.now()));
    await person.page.context().close();
  }

  // 3. Scroll through everything.
  const person = { page: await signedInPage(browser, server.url, owner.refreshToken) };
  await person.page.goto(url);
  await person.page.waitForFunction(shown, newest, { polling: 'raf' });
  // Plain JS read as text: tsx would wrap functions written here in a helper the page lacks.
  const scrollThrough = readFileSync(path.join(ROOT, 'bench', 'web-scroll.js'), 'utf8')
    .trim()
    .replace(/;$/, '');
  const oldest = JSON.stringify('message 0\nwith a second line\nand a third');
  const scroll: ScrollResult = await person.page.evaluate(`(${scrollThrough})(${oldest}, 400)`);
  await browser.close();
  await server.stop();

  const result = {
    machine: `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.versions.node}`,
    load_average: os.loadavg().map((l) => Math.round(l * 10) / 10),
    chromium: execFileSync('/usr/bin/chromium', ['--version'], { encoding: 'utf8' }).trim(),
    history: HISTORY,
    ...sizes,
    first_load_ms_cold: { median: median(cold), runs: cold.map(Math.round) },
    first_load_ms_warm: { median: median(warm), runs: warm.map(Math.round) },
    scroll,
  };
  const rows = [
    ['first-load JS (gzip)', `${kb(sizes.initial_js_gzip)} KB`, '≤ 100 KB'],
    ['first-load CSS (gzip)', `${kb(sizes.initial_css_gzip)} KB`, ''],
    ['lazy JS (gzip)', sizes.lazy_js.map((c) => `${path.basename(c.file)} ${kb(c.gzip)} KB`).join(', '), 'on use'],
    ['navigation → last 50 shown, cold (median)', `${Math.round(median(cold))} ms`, '< 500 ms'],
    ['navigation → last 50 shown, warm (median)', `${Math.round(median(warm))} ms`, '< 500 ms'],
    [`scroll ${HISTORY} messages: longest frame`, `${scroll.max_frame_ms.toFixed(1)} ms`, '≤ 50 ms'],
    ['scroll: frames over 50 ms / long tasks', `${scroll.frames_over_50ms} / ${scroll.long_tasks}`, '0'],
    ['scroll: p99 frame, rows in DOM (max)', `${scroll.p99_frame_ms.toFixed(1)} ms, ${scroll.max_rows_in_dom}`, ''],
  ];
  const w = Math.max(...rows.map((r) => r[0]!.length));
  console.log(`\n${result.machine}; ${result.chromium}; load average ${result.load_average.join(' ')}\n`);
  for (const [k, v, t] of rows) console.log(`${k!.padEnd(w)}  ${v!.padEnd(24)}  ${t}`);
  console.log(`\n${JSON.stringify(result, null, 2)}`);
  printVoice(lazyChunkSizes(WEB), await benchVoice(RUNS, Number(process.env.BENCH_VOICE_SECONDS ?? 60)));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
