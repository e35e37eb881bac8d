/**
 * Voice in the browser: two real Chromium pages with fake microphones join a voice channel through
 * the UI (mediasoup-client over the real gateway, DTLS-SRTP over loopback to the real SFU). Each
 * hears the other (the received audio level in the page's speaking indicator rises), mute makes it
 * fall, leaving removes the peer on the other side, a full channel says so, and a dropped gateway
 * connection rejoins by itself.
 */
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { browserSuite, newPerson, type Person, toneMicArgs } from '../support/browser.js';
import { api, createUser, type TestUser } from '../support/factories.js';
import { guildWith, ok } from '../support/guilds.js';
import { captureRtp, decodeInPage, framesAt, tappedProducers, tappedRouters } from '../support/rtp-tap.js';
import type { TestServer } from '../support/server.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';

const VOICE_ENV = {
  VOICECHAT_VOICE: 'on',
  VOICECHAT_RTC_PORT: '0',
  VOICECHAT_RTC_LISTEN_IP: '127.0.0.1',
  VOICECHAT_RTC_WORKERS: '1',
};
const HEARD = 0.01;

/** The loudest level `who` reached in `page`'s view of the channel over `ms` (what the indicator shows). */
async function maxLevel(page: Page, who: string, ms: number): Promise<number> {
  let max = 0;
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const v = await page
      .locator(`li.voice-person[data-user-id="${who}"]`)
      .getAttribute('data-level', { timeout: 1_000 })
      .catch(() => null);
    max = Math.max(max, Number(v ?? 0));
    await page.waitForTimeout(100);
  }
  return max;
}

async function waitHeard(page: Page, who: string, timeoutMs = 15_000): Promise<number> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const m = await maxLevel(page, who, 1_000);
    if (m > HEARD) return m;
  }
  return 0;
}

describe('web client: voice channels', { timeout: 120_000 }, () => {
  const suite = browserSuite({ env: VOICE_ENV, browserArgs: toneMicArgs(440) });
  let owner: TestUser;
  let member: TestUser;
  let guildId: string;
  let voiceId: string;
  let a: Person;
  let b: Person;
  let proxy: TcpProxy;

  afterAll(async () => {
    await proxy?.close();
  });

  beforeAll(async () => {
    const { server } = suite;
    [owner, member] = await Promise.all([createUser(server), createUser(server)]);
    const g = await guildWith(server, owner, 'Voice guild', [member]);
    guildId = g.guildId;
    voiceId = g.guild.channels.find((c: { type: string }) => c.type === 'voice').id;
    // B reaches the server through a relay the test can cut (the media itself goes straight to the SFU).
    proxy = await startTcpProxy();
    proxy.setTarget(server.port);
    const viaProxy = { ...server, url: proxy.url } as TestServer;
    a = suite.people.a = await newPerson(suite.browser, server, { refreshToken: owner.refreshToken });
    b = suite.people.b = await newPerson(suite.browser, viaProxy, { refreshToken: member.refreshToken });
    await Promise.all([a.page.goto(`/channels/${guildId}`), b.page.goto(`/channels/${guildId}`)]);
  });

  const voiceLink = (p: Person, name = 'General') =>
    p.page.getByRole('navigation', { name: 'Channels' }).getByRole('link', { name: new RegExp(`^♪?\\s*${name}`) });

  it('two people hear each other; mute makes it fall; leaving removes the peer', async () => {
    await voiceLink(a).click();
    await expect.poll(() => a.page.getByRole('status').filter({ hasText: 'Voice connected' }).count()).toBe(1);
    expect(new URL(a.page.url()).pathname).toBe(`/channels/${guildId}/${voiceId}`);
    await voiceLink(b).click();
    await expect.poll(() => b.page.getByRole('status').filter({ hasText: 'Voice connected' }).count()).toBe(1);
    // Both see both in the channel.
    for (const p of [a, b])
      await expect.poll(() => p.page.locator('li.voice-person').count(), { timeout: 10_000 }).toBe(2);

    expect(await waitHeard(a.page, member.id)).toBeGreaterThan(HEARD);
    expect(await waitHeard(b.page, owner.id)).toBeGreaterThan(HEARD);

    // Without end-to-end encryption the server can listen: a tap decodes B's microphone.
    const producer = tappedProducers.find((p) => !p.closed && (p.appData as { userId?: string }).userId === member.id);
    const router = tappedRouters.find((r) => !r.closed);
    const report = await decodeInPage(a.page, await captureRtp(router!, producer!.id, 2_500));
    expect(report.decodeErrors).toBe(0);
    expect(report.rms).toBeGreaterThan(0.01);
    expect(framesAt(report, 440) / report.frames).toBeGreaterThan(0.8);

    // B mutes: A's received level for B falls to silence; the state shows as muted for A.
    await b.page.getByRole('button', { name: 'Mute', exact: true }).click();
    await expect
      .poll(() => a.page.locator(`li.voice-person[data-user-id="${member.id}"] .tag`).allTextContents())
      .toContain('muted');
    await a.page.waitForTimeout(500);
    expect(await maxLevel(a.page, member.id, 2_500)).toBeLessThan(HEARD);
    // A still hears... nothing from B, but B still hears A.
    expect(await waitHeard(b.page, owner.id)).toBeGreaterThan(HEARD);
    await b.page.getByRole('button', { name: 'Unmute' }).click();
    expect(await waitHeard(a.page, member.id)).toBeGreaterThan(HEARD);

    // B leaves: gone from A's list, and A's page has no consumer for B any more.
    await b.page.getByRole('region', { name: 'Voice connection' }).getByRole('button', { name: 'Leave' }).click();
    await expect.poll(() => a.page.locator(`li.voice-person[data-user-id="${member.id}"]`).count()).toBe(0);
    await expect.poll(() => b.page.getByRole('button', { name: 'Join voice' }).count()).toBe(1);
    expect(a.pageErrors).toEqual([]);
    expect(b.pageErrors).toEqual([]);
    expect(a.violations).toEqual([]);
  });

  it('rejoins by itself after the gateway connection drops', async () => {
    await voiceLink(b).click();
    expect(await waitHeard(a.page, member.id)).toBeGreaterThan(HEARD);
    // Close B's socket as the network would: the server drops B from voice, B reconnects and rejoins.
    proxy.setTarget(null);
    await expect
      .poll(() => b.page.getByRole('status').filter({ hasText: 'Reconnecting' }).count(), { timeout: 15_000 })
      .toBeGreaterThan(0);
    // The server noticed the closed socket and took B out of voice.
    await expect.poll(() => a.page.locator(`li.voice-person[data-user-id="${member.id}"]`).count()).toBe(0);
    proxy.setTarget(suite.server.port);
    await expect
      .poll(() => b.page.getByRole('status').filter({ hasText: 'Voice connected' }).count(), { timeout: 30_000 })
      .toBe(1);
    expect(await waitHeard(a.page, member.id, 20_000)).toBeGreaterThan(HEARD);
    expect(await waitHeard(b.page, owner.id, 20_000)).toBeGreaterThan(HEARD);
    await b.page.getByRole('region', { name: 'Voice connection' }).getByRole('button', { name: 'Leave' }).click();
  });

  it('says when a channel is full', async () => {
    const { server } = suite;
    const small = await ok(
      api(server, 'POST', `/api/guilds/${guildId}/channels`, {
        user: owner,
        body: { name: 'Tiny', type: 'voice', user_limit: 1 },
      }),
      201,
    );
    await expect.poll(() => voiceLink(a, 'Tiny').count()).toBe(1);
    await voiceLink(a, 'Tiny').click();
    await expect.poll(() => a.page.getByRole('status').filter({ hasText: 'Voice connected' }).count()).toBe(1);
    await b.page.waitForTimeout(1_100); // the join rate limit is one per second
    await voiceLink(b, 'Tiny').click();
    await expect
      .poll(() => b.page.getByRole('alert').filter({ hasText: 'This voice channel is full.' }).count())
      .toBe(1);
    expect(small.user_limit).toBe(1);
  });
});
