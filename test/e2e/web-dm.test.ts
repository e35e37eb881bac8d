/**
 * End-to-end encrypted direct messages in the browser (issue 15 item 1): A starts a DM with B from
 * "New message", unlocks this browser's Olm device and sends; B reads the plaintext; the database row
 * holds only the per-device Olm envelope; B reloads, unlocks with the password and still reads the
 * history (from the plaintext kept in its sealed store). A browser device created after a message
 * was sent shows a notice for it, never the envelope.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Person } from '../support/browser.js';
import { browserSuite, newPerson } from '../support/browser.js';
import { createSession, createUser, type TestUser } from '../support/factories.js';
import { guildWith } from '../support/guilds.js';

const SECRET_TEXT = 'meet at the old mill at nine';

async function unlock(p: Person, password: string): Promise<void> {
  const dialog = p.page.getByRole('form', { name: 'Unlock encryption keys' });
  await dialog.getByLabel('Password').fill(password);
  await dialog.getByRole('button', { name: 'Unlock' }).click();
  await dialog.waitFor({ state: 'detached', timeout: 30_000 });
}

describe('web client: end-to-end encrypted DMs', { timeout: 180_000 }, () => {
  const suite = browserSuite();
  let users: TestUser[];
  let a: Person;
  let b: Person;
  let c: Person;
  let dmId: string;

  beforeAll(async () => {
    const { server, browser } = suite;
    users = await Promise.all([createUser(server), createUser(server), createUser(server)]);
    await guildWith(server, users[0]!, 'Shared', [users[1]!, users[2]!]);
    [a, b, c] = (await Promise.all(users.map((u) => newPerson(browser, server, { refreshToken: u.refreshToken })))) as [
      Person,
      Person,
      Person,
    ];
    Object.assign(suite.people, { a, b, c });
  });
  afterAll(() => {
    for (const p of [a, b, c]) {
      expect(p?.pageErrors ?? []).toEqual([]);
      expect(p?.violations ?? []).toEqual([]);
    }
  });

  it('B unlocks first (so it has a device); A starts a DM with B and sends; B reads it', async () => {
    // B's device exists before A sends (a device created later cannot read earlier messages).
    await b.page.goto('/settings');
    await b.page.getByRole('button', { name: 'Unlock to show devices' }).click();
    await unlock(b, users[1]!.password);
    await b.page.locator('ul.devices li').first().waitFor({ timeout: 15_000 });

    await a.page.goto('/');
    await a.page.getByRole('link', { name: 'Direct messages' }).click();
    await a.page.getByRole('button', { name: 'New message' }).click();
    const form = a.page.getByRole('form', { name: 'New message' });
    await form.getByLabel(users[1]!.username).check();
    await form.getByRole('button', { name: 'Start' }).click();
    await a.page.waitForURL(/\/dm\/[^/]+$/);
    dmId = a.page.url().split('/').pop()!;
    await unlock(a, users[0]!.password);
    await a.page.getByLabel('Message', { exact: true }).fill(SECRET_TEXT);
    await a.page.getByRole('button', { name: 'Send' }).click();
    await a.page.locator('.dm-text', { hasText: SECRET_TEXT }).waitFor({ timeout: 15_000 });

    await b.page.goto('/dm');
    await b.page.getByRole('navigation', { name: 'Direct messages' }).getByRole('link').first().click();
    // A page load locks the keys again: the conversation asks for the password.
    await unlock(b, users[1]!.password);
    await b.page.locator('.dm-text', { hasText: SECRET_TEXT }).waitFor({ timeout: 15_000 });
    expect(await b.page.locator('.dm-message').count()).toBe(1);
  });

  it('the database holds only ciphertext', async () => {
    const rows = await suite.server.db('messages').where({ channel_id: dmId }).select('content', 'encrypted', 'nonce');
    expect(rows).toHaveLength(1);
    const row = rows[0]!;
    expect(Boolean(row.encrypted)).toBe(true);
    expect(row.nonce).toBeTruthy();
    expect(row.content).not.toContain(SECRET_TEXT);
    expect(row.content).not.toContain('old mill');
    const env = JSON.parse(row.content);
    expect(env).toMatchObject({ v: 1, alg: 'olm' });
    // One ciphertext per recipient device: B's one device (A's only device is the sender).
    expect(Object.keys(env.ciphertexts)).toEqual([users[1]!.id]);
    const forB = Object.values(env.ciphertexts[users[1]!.id]) as { type: number; body: string }[];
    expect(forB).toHaveLength(1);
    const c = forB[0]!;
    expect(c.type).toBe(0);
    expect(Buffer.from(c.body, 'base64').toString('latin1')).not.toContain('mill');
  });

  it('B reloads, unlocks with the password and still reads the history; A keeps its own', async () => {
    await b.page.reload();
    await unlock(b, users[1]!.password);
    await b.page.locator('.dm-text', { hasText: SECRET_TEXT }).waitFor({ timeout: 15_000 });
    // B answers after the reload (its Olm session survived in the sealed store); A reads it.
    await b.page.getByLabel('Message', { exact: true }).fill('see you there');
    await b.page.getByRole('button', { name: 'Send' }).click();
    await a.page.locator('.dm-text', { hasText: 'see you there' }).waitFor({ timeout: 15_000 });

    await a.page.reload();
    await unlock(a, users[0]!.password);
    await a.page.locator('.dm-text', { hasText: SECRET_TEXT }).waitFor({ timeout: 15_000 });
    await a.page.locator('.dm-text', { hasText: 'see you there' }).waitFor({ timeout: 15_000 });
  });

  it('a new device of B cannot read earlier messages and says so, never showing ciphertext', async () => {
    // Another browser profile of B, signed in with its own session (a fresh device, empty store).
    const session = await createSession(suite.server, users[1]!.id);
    const b2 = await newPerson(suite.browser, suite.server, { refreshToken: session.refreshToken });
    try {
      await b2.page.goto(`/dm/${dmId}`);
      await unlock(b2, users[1]!.password);
      await expect.poll(() => b2.page.locator('.dm-notice').count(), { timeout: 15_000 }).toBe(2);
      const text = await b2.page.locator('ol.dm-messages').textContent();
      expect(text).toContain('sent before this device existed');
      expect(text).not.toContain('ciphertexts');
      expect(text).not.toContain(SECRET_TEXT);
      // A's next message reaches the new device too.
      await a.page.getByLabel('Message', { exact: true }).fill('hello both browsers');
      await a.page.getByRole('button', { name: 'Send' }).click();
      await b2.page.locator('.dm-text', { hasText: 'hello both browsers' }).waitFor({ timeout: 15_000 });
      await b.page.locator('.dm-text', { hasText: 'hello both browsers' }).waitFor({ timeout: 15_000 });
      expect(b2.pageErrors).toEqual([]);
    } finally {
      await b2.close();
    }
  });

  it("group DM over Megolm: C leaves; A's next message is not decryptable with C's stored sessions", async () => {
    const say = async (p: Person, text: string) => {
      await p.page.getByLabel('Message', { exact: true }).fill(text);
      await p.page.getByRole('button', { name: 'Send' }).click();
      await p.page.locator('.dm-text', { hasText: text }).waitFor({ timeout: 15_000 });
    };
    // C has a device before the group starts.
    await c.page.goto('/settings');
    await c.page.getByRole('button', { name: 'Unlock to show devices' }).click();
    await unlock(c, users[2]!.password);
    await c.page.locator('ul.devices li').first().waitFor({ timeout: 15_000 });

    // A (still unlocked from the last test) starts a group with B and C.
    await a.page.getByRole('button', { name: 'New message' }).click();
    const form = a.page.getByRole('form', { name: 'New message' });
    await form.getByLabel(users[1]!.username).check();
    await form.getByLabel(users[2]!.username).check();
    await form.getByRole('button', { name: 'Start' }).click();
    await a.page.waitForURL((u) => u.pathname.startsWith('/dm/') && !u.pathname.endsWith(dmId));
    const groupId = a.page.url().split('/').pop()!;
    await say(a, 'group hello one');

    await b.page.locator(`a[href="/dm/${groupId}"]`).click();
    await b.page.locator('.dm-text', { hasText: 'group hello one' }).waitFor({ timeout: 15_000 });
    await c.page.goto(`/dm/${groupId}`);
    await unlock(c, users[2]!.password);
    await c.page.locator('.dm-text', { hasText: 'group hello one' }).waitFor({ timeout: 15_000 });
    await say(c, 'hi from C');
    await a.page.locator('.dm-text', { hasText: 'hi from C' }).waitFor({ timeout: 15_000 });
    await b.page.locator('.dm-text', { hasText: 'hi from C' }).waitFor({ timeout: 15_000 });

    // C leaves; A writes again; B reads it.
    await c.page.getByRole('button', { name: 'Leave' }).click();
    await c.page.waitForURL((u) => u.pathname === '/dm');
    await say(a, 'after C left');
    await b.page.locator('.dm-text', { hasText: 'after C left' }).waitFor({ timeout: 15_000 });

    const rows = await suite.server
      .db('messages')
      .where({ channel_id: groupId })
      .orderBy('id')
      .select('content', 'author_id');
    expect(rows).toHaveLength(3);
    for (const r of rows) {
      expect(r.content).not.toMatch(/hello|from C|left/);
      expect(JSON.parse(r.content)).toMatchObject({ v: 1, alg: 'megolm' });
    }
    const [first, , last] = rows.map((r) => ({ content: r.content as string, author: r.author_id as string }));
    // A started a new session for the message after the leave.
    expect(JSON.parse(last!.content).session_id).not.toBe(JSON.parse(first!.content).session_id);
    const tryInC = (m: { content: string; author: string }) =>
      c.page.evaluate(([ch, author, content]) => (globalThis as any).voicechatDm.tryDecrypt(ch, author, content), [
        groupId,
        m.author,
        m.content,
      ] as const);
    // C's stored sessions open what was sent while C was in the group, not what came after.
    expect(await tryInC(first!)).toBe('group hello one');
    expect(await tryInC(last!)).toBeNull();
    // The sessions are backed up to the server's store, sealed (no key or plaintext readable there).
    const backups = await suite.server.db('megolm_sessions').where({ channel_id: groupId }).select('*');
    expect(backups.length).toBeGreaterThanOrEqual(2);
  });
});
