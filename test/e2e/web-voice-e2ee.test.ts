/**
 * End-to-end encrypted voice in the browser (issue 15 item 3): the owner switches a voice channel to
 * `e2ee_voice` in the UI; everyone joining unlocks their Olm device with their password, seals their
 * Opus frames with a sender key and hands it to the others only through Olm to-device messages. Two
 * people hear each other; a third whose key messages never arrive (the test filters them out of its
 * gateway connection) is in the call and receives the media but hears nothing — until the keys reach
 * it; every join and leave replaces the senders' keys.
 */
import type { Page, WebSocketRoute } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { browserSuite, newPerson, type Person, toneMicArgs } from '../support/browser.js';
import { api, createUser, type TestUser } from '../support/factories.js';
import { guildWith } from '../support/guilds.js';
import { captureRtp, decodeInPage, framesAt, tappedProducers, tappedRouters } from '../support/rtp-tap.js';

const VOICE_ENV = {
  VOICECHAT_VOICE: 'on',
  VOICECHAT_RTC_PORT: '0',
  VOICECHAT_RTC_LISTEN_IP: '127.0.0.1',
  VOICECHAT_RTC_WORKERS: '1',
};
const HEARD = 0.01;

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

const keyChanges = async (p: Person) => Number(await p.page.locator('.voice-key').getAttribute('data-key-changes'));
const keyId = async (p: Person) => Number(await p.page.locator('.voice-key').getAttribute('data-key-id'));

describe('web client: end-to-end encrypted voice', { timeout: 180_000 }, () => {
  const suite = browserSuite({ env: VOICE_ENV, browserArgs: toneMicArgs(440) });
  let users: TestUser[];
  let a: Person;
  let b: Person;
  let c: Person;
  let guildId: string;
  let voiceId: string;
  /** While true, `to_device` frames never reach C's page. */
  let blockForC = true;
  let cSocket: WebSocketRoute | undefined;

  beforeAll(async () => {
    const { server, browser } = suite;
    users = await Promise.all([createUser(server), createUser(server), createUser(server)]);
    const g = await guildWith(server, users[0]!, 'Secret voice', [users[1]!, users[2]!]);
    guildId = g.guildId;
    voiceId = g.guild.channels.find((ch: { type: string }) => ch.type === 'voice').id;
    [a, b, c] = (await Promise.all(users.map((u) => newPerson(browser, server, { refreshToken: u.refreshToken })))) as [
      Person,
      Person,
      Person,
    ];
    Object.assign(suite.people, { a, b, c });
    await c!.page.routeWebSocket(/\/ws$/, (ws) => {
      cSocket = ws;
      const upstream = ws.connectToServer();
      upstream.onMessage((m) => {
        if (blockForC && typeof m === 'string' && m.includes('"type":"to_device"')) return;
        ws.send(m);
      });
      ws.onMessage((m) => upstream.send(m));
    });
    for (const p of [a, b, c]) await p!.page.goto(`/channels/${guildId}/${voiceId}`);
  });
  afterAll(() => {
    for (const p of [a, b, c]) expect(p?.pageErrors ?? []).toEqual([]);
  });

  const join = async (p: Person, password: string) => {
    await p.page.getByRole('button', { name: 'Join voice' }).click();
    const dialog = p.page.getByRole('form', { name: 'Unlock encryption keys' });
    await dialog.getByLabel('Password').fill(password);
    await dialog.getByRole('button', { name: 'Unlock' }).click();
    await p.page
      .getByRole('status')
      .filter({ hasText: 'Voice connected, end-to-end encrypted' })
      .waitFor({ timeout: 30_000 });
  };

  it('the owner turns it on; both hear each other with keys only they hold', async () => {
    await a.page.getByLabel('End-to-end encrypted voice').check();
    // Everyone sees the channel as encrypted (channel_update).
    for (const p of [b, c]) await p.page.getByText('Voice here is end-to-end encrypted').waitFor({ timeout: 10_000 });

    await join(a, users[0]!.password);
    await join(b, users[1]!.password);
    expect(await waitHeard(a.page, users[1]!.id, 20_000)).toBeGreaterThan(HEARD);
    expect(await waitHeard(b.page, users[0]!.id, 20_000)).toBeGreaterThan(HEARD);
  });

  it('a tap on the server sees only payloads that do not decode as the microphone', async () => {
    const producer = tappedProducers.find(
      (p) => !p.closed && (p.appData as { userId?: string }).userId === users[0]!.id,
    );
    const router = tappedRouters.find((r) => !r.closed);
    expect(producer && router).toBeTruthy();
    const payloads = await captureRtp(router!, producer!.id, 2_500);
    expect(payloads.length).toBeGreaterThan(50);
    // Every payload carries our frame header (key id, counter) and a 16-byte tag around the sealed Opus.
    const report = await decodeInPage(a.page, payloads);
    // Whatever the decoder makes of it, it is not the microphone's tone (web-voice.test.ts shows the
    // same tap on a plain channel: nearly every frame decodes to the 440 Hz tone).
    expect(framesAt(report, 440) / report.frames).toBeLessThan(0.2);
  });

  it('a third person without the keys hears nothing; joining and leaving replace the keys', async () => {
    const [aChanges, aKey, bChanges] = [await keyChanges(a), await keyId(a), await keyChanges(b)];
    await join(c, users[2]!.password);
    // A and B picked new keys for the new set of listeners, and still hear each other.
    await expect.poll(() => keyChanges(a), { timeout: 15_000 }).toBeGreaterThan(aChanges);
    await expect.poll(() => keyChanges(b), { timeout: 15_000 }).toBeGreaterThan(bChanges);
    expect(await keyId(a)).not.toBe(aKey);
    expect(await waitHeard(a.page, users[1]!.id)).toBeGreaterThan(HEARD);
    expect(await waitHeard(b.page, users[0]!.id)).toBeGreaterThan(HEARD);
    // C is in the call and gets the media, but no key: nothing is played.
    await expect.poll(() => c.page.locator('li.voice-person').count()).toBe(3);
    expect(await maxLevel(c.page, users[0]!.id, 3_000)).toBeLessThan(HEARD);
    expect(await maxLevel(c.page, users[1]!.id, 1_000)).toBeLessThan(HEARD);

    // Let the key messages through and have B rejoin (everyone rotates): now C hears them.
    blockForC = false;
    expect(cSocket).toBeDefined();
    await b.page.getByRole('region', { name: 'Voice connection' }).getByRole('button', { name: 'Leave' }).click();
    await b.page.waitForTimeout(1_100);
    await b.page.getByRole('button', { name: 'Join voice' }).click();
    await b.page.getByRole('status').filter({ hasText: 'end-to-end encrypted' }).waitFor({ timeout: 30_000 });
    expect(await waitHeard(c.page, users[0]!.id, 20_000)).toBeGreaterThan(HEARD);
    expect(await waitHeard(c.page, users[1]!.id, 20_000)).toBeGreaterThan(HEARD);

    // C leaves: A replaces its key again.
    const before = await keyChanges(a);
    await c.page.getByRole('region', { name: 'Voice connection' }).getByRole('button', { name: 'Leave' }).click();
    await expect.poll(() => keyChanges(a), { timeout: 15_000 }).toBeGreaterThan(before);
    expect(await waitHeard(b.page, users[0]!.id)).toBeGreaterThan(HEARD);
  });

  it('after a reload the keys open only with the password, and the call goes on', async () => {
    await a.page.reload();
    await a.page.getByRole('button', { name: 'Join voice' }).click();
    const dialog = a.page.getByRole('form', { name: 'Unlock encryption keys' });
    await dialog.getByLabel('Password').fill('not the password');
    await dialog.getByRole('button', { name: 'Unlock' }).click();
    await dialog.getByText('does not unlock').waitFor({ timeout: 20_000 });
    await dialog.getByLabel('Password').fill(users[0]!.password);
    await dialog.getByRole('button', { name: 'Unlock' }).click();
    await a.page.getByRole('status').filter({ hasText: 'end-to-end encrypted' }).waitFor({ timeout: 30_000 });
    expect(await waitHeard(b.page, users[0]!.id, 20_000)).toBeGreaterThan(HEARD);
    expect(await waitHeard(a.page, users[1]!.id, 20_000)).toBeGreaterThan(HEARD);
  });

  it('settings list the devices with their ed25519 fingerprints, and remove one', async () => {
    const { server } = suite;
    const onServer = (await api(server, 'GET', `/api/users/${users[2]!.id}/keys`, { user: users[0]! })).body;
    expect(onServer).toHaveLength(1);
    await c.page.goto('/settings');
    const section = c.page.getByRole('region', { name: 'Encryption devices' });
    await section.getByRole('button', { name: 'Unlock to show devices' }).click();
    const form = c.page.getByRole('form', { name: 'Unlock encryption keys' });
    await form.getByLabel('Password').fill(users[2]!.password);
    await form.getByRole('button', { name: 'Unlock' }).click();
    const row = section.locator(`li[data-device-id="${onServer[0].device_id}"]`);
    await row.getByText('this browser').waitFor({ timeout: 20_000 });
    const shown = (await row.locator('.fingerprint').textContent())!.replace(/\s+/g, '');
    expect(shown).toBe(onServer[0].identity_keys.ed25519);
    await row.getByRole('button', { name: 'Remove' }).click();
    await expect
      .poll(async () => (await api(server, 'GET', `/api/users/${users[2]!.id}/keys`, { user: users[0]! })).body.length)
      .toBe(0);
    // The local store went with it: the next unlock starts a new device.
    expect(
      await c.page.evaluate(async () => (await (globalThis as any).indexedDB.databases()).map((d: any) => d.name)),
    ).not.toContain(`voicechat-keys-${users[2]!.id}`);
  });
});
