/**
 * Resilience: the server process restarts mid-session (same database and keys, same port). Both pages show
 * the reconnecting state; a message typed while the server is down is delivered once when it is back;
 * a message posted while the pages were still reconnecting reaches them through history; no view holds
 * anything twice.
 */

import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Keyring } from '../../src/crypto/keyring.js';
import {
  launchBrowser,
  messageRows,
  newPerson,
  type Person,
  screenshotIfFailed,
  sendInBrowser,
} from '../support/browser.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { api, createUser, type TestUser } from '../support/factories.js';
import { guildWith, ok } from '../support/guilds.js';
import { type NodeProcess, startNodeProcess } from '../support/nodes.js';
import type { TestServer } from '../support/server.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';

const rowsWith = (page: Page, text: string) => messageRows(page).filter({ hasText: text });

describe('web client: reconnect after a server restart', { timeout: 90_000 }, () => {
  let database: TestDatabase;
  let keyring: Keyring;
  let node: NodeProcess;
  let proxy: TcpProxy;
  /** What the factories need of a server: its address, database and keys. */
  let server: TestServer;
  let env: Record<string, string>;
  let browser: Browser;
  let aliceUser: TestUser;
  let bobUser: TestUser;
  let alice: Person;
  let bob: Person;
  let channelId: string;

  beforeAll(async () => {
    database = await createTestDatabase();
    keyring = Keyring.generate();
    const keyringFile = path.join(database.dir, 'keys.json');
    keyring.save(keyringFile);
    env = {
      VOICECHAT_DATA_DIR: database.dir,
      VOICECHAT_DATABASE_URL: database.databaseUrl,
      VOICECHAT_KEYRING: keyringFile,
      VOICECHAT_REGISTRATION: 'open',
      VOICECHAT_LOG_LEVEL: 'warn',
    };
    [node, browser, proxy] = await Promise.all([startNodeProcess(env), launchBrowser(), startTcpProxy()]);
    proxy.setTarget(node.port);
    server = {
      url: proxy.url,
      port: proxy.port,
      db: database.db,
      keyring,
      config: { accessTokenTtlSeconds: 900 },
    } as unknown as TestServer;
    [aliceUser, bobUser] = await Promise.all([createUser(server), createUser(server)]);
    const { guild, channelId: general } = await guildWith(server, aliceUser, 'Relay', [bobUser]);
    channelId = general;
    [alice, bob] = await Promise.all([
      newPerson(browser, server, { refreshToken: aliceUser.refreshToken }),
      newPerson(browser, server, { refreshToken: bobUser.refreshToken }),
    ]);
    for (const p of [alice, bob]) await p.page.goto(`/channels/${guild.id}/${channelId}`);
  });
  afterEach((ctx) => screenshotIfFailed(ctx, { alice, bob }));
  afterAll(async () => {
    await browser?.close();
    await node?.stop();
    await proxy?.close();
    await database?.drop();
  });

  it('delivers what was typed during the outage exactly once, and fills the gap from history', async () => {
    await sendInBrowser(alice.page, 'before the restart');
    await rowsWith(bob.page, 'before the restart').waitFor();

    proxy.setTarget(null);
    await node.stop();
    for (const p of [alice, bob]) await p.page.getByRole('status').filter({ hasText: 'Reconnecting' }).waitFor();

    await sendInBrowser(alice.page, 'typed while the server was down');
    await rowsWith(alice.page, 'typed while the server was down')
      .getByText(/Not sent/)
      .waitFor();

    node = await startNodeProcess(env);
    proxy.setTarget(node.port);
    // Posted at once, most likely before either page has reconnected: only history can bring it.
    await ok(
      api({ url: node.url } as TestServer, 'POST', `/api/channels/${channelId}/messages`, {
        user: bobUser,
        body: { content: 'while you were away' },
      }),
      201,
    );

    for (const p of [alice, bob]) {
      await rowsWith(p.page, 'typed while the server was down')
        .filter({ hasNotText: 'Not sent' })
        .waitFor({ timeout: 45_000 });
      await rowsWith(p.page, 'while you were away').waitFor();
      await expect.poll(() => p.page.getByRole('status').filter({ hasText: 'Reconnecting' }).count()).toBe(0);
    }
    // Live again after the restart.
    await sendInBrowser(bob.page, 'after the restart');
    await rowsWith(alice.page, 'after the restart').waitFor();

    for (const p of [alice, bob])
      for (const text of [
        'before the restart',
        'typed while the server was down',
        'while you were away',
        'after the restart',
      ])
        expect(await rowsWith(p.page, text).count(), text).toBe(1);
    const stored = await server
      .db('messages')
      .where({ channel_id: channelId, content: 'typed while the server was down' });
    expect(stored).toHaveLength(1);
    for (const p of [alice, bob]) expect(p.pageErrors).toEqual([]);
  });
});
