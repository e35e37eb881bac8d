/**
 * Multi-node: two server processes sharing one database and Redis. A message posted over REST on node
 * A (and an event published on node B's bus) reaches sockets on node B and on node A exactly once;
 * session revocation and access changes cross nodes too.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signAccessToken } from '../../src/auth/tokens.js';
import { Keyring } from '../../src/crypto/keyring.js';
import { hashToken, randomToken } from '../../src/crypto/random.js';
import { newId, nowMs } from '../../src/ids.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { type GuildRows, removeMember, seedGuildRows } from '../support/guilds.js';
import { type NodeProcess, startNodeProcess } from '../support/nodes.js';
import { GatewayClient } from '../support/ws.js';

const PRESENCE_GRACE_MS = 500;
const REDIS_URL = process.env.VOICECHAT_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

describe('gateway on two nodes', () => {
  let database: TestDatabase;
  let keyring: Keyring;
  let a: NodeProcess;
  let b: NodeProcess;
  let g: GuildRows;
  const users: { id: string; token: string; sid: string }[] = [];

  async function user() {
    const id = newId();
    const sid = newId();
    const now = nowMs();
    await database.db('users').insert({
      id,
      username: `mn_${Math.random().toString(36).slice(2, 10)}`,
      password_hash: 'x',
      created_at: now,
      updated_at: now,
    });
    await database.db('sessions').insert({
      id: sid,
      family_id: sid,
      user_id: id,
      token_hash: hashToken(randomToken()),
      created_at: now,
      expires_at: now + 3600_000,
    });
    const u = { id, sid, token: signAccessToken(keyring, { userId: id, sessionId: sid }, 900) };
    users.push(u);
    return u;
  }

  beforeAll(async () => {
    database = await createTestDatabase();
    keyring = Keyring.generate();
    const keyringFile = path.join(database.dir, 'keys.json');
    keyring.save(keyringFile);
    const env = {
      VOICECHAT_DATA_DIR: database.dir,
      VOICECHAT_DATABASE_URL: database.databaseUrl,
      VOICECHAT_KEYRING: keyringFile,
      VOICECHAT_LOG_LEVEL: 'warn',
      VOICECHAT_RATE_LIMIT_SCALE: '50',
      REDIS_URL,
      // Our own keys and bus channel on a Redis other test runs may share.
      VOICECHAT_REDIS_PREFIX: `vct${Math.random().toString(36).slice(2, 10)}`,
      VOICECHAT_PRESENCE_GRACE_MS: String(PRESENCE_GRACE_MS),
    };
    [a, b] = await Promise.all([startNodeProcess(env), startNodeProcess(env)]);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await database?.drop();
  });

  it('delivers an event published on node A to sockets on both nodes exactly once', async () => {
    const author = await user();
    const reader = await user();
    g = await seedGuildRows(database.db, author.id, [reader.id]);
    const onB = await GatewayClient.ready(b.wsUrl, reader.token);
    const onA = await GatewayClient.ready(a.wsUrl, author.token);
    // Posted over REST on node A: stored there, published after the commit, fanned out by both nodes.
    const say = async (content: string) => {
      const res = await fetch(`${a.url}/api/channels/${g.textChannelId}/messages`, {
        method: 'POST',
        headers: { authorization: `Bearer ${author.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ content }),
      });
      expect(res.status).toBe(201);
      return (await res.json()) as { id: string };
    };
    const posted = await say('across nodes');
    await say('barrier');
    for (const c of [onB.client, onA.client]) {
      await c.event('message_new', (d) => d.content === 'barrier');
      expect(c.events('message_new').map((f) => f.data.content)).toEqual(['across nodes', 'barrier']);
      expect(c.events('message_new')[0]?.data.id).toBe(posted.id);
    }
    // and the other way round
    b.publish({
      kind: 'dispatch',
      topic: `channel:${g.textChannelId}`,
      type: 'message_new',
      data: { id: newId(), content: 'from b' },
    });
    await say('barrier 2');
    for (const c of [onB.client, onA.client]) {
      await c.event('message_new', (d) => d.content === 'barrier 2');
      expect(c.events('message_new').filter((f) => f.data.content === 'from b')).toHaveLength(1);
    }
    onA.client.close();
    onB.client.close();
  });

  it('applies access changes and session revocation published on the other node', async () => {
    const kicked = await user();
    await database.db('guild_members').insert({ guild_id: g.guildId, user_id: kicked.id, joined_at: nowMs() });
    const onB = await GatewayClient.ready(b.wsUrl, kicked.token);
    await removeMember(database.db, g.guildId, kicked.id);
    a.publish({ kind: 'access_changed', guildId: g.guildId, userIds: [kicked.id] });
    a.publish({
      kind: 'dispatch',
      topic: `channel:${g.textChannelId}`,
      type: 'message_new',
      data: { content: 'gone' },
    });
    a.publish({ kind: 'dispatch', topic: `user:${kicked.id}`, type: 'barrier', data: {} });
    await onB.client.event('barrier');
    expect(onB.client.events('message_new')).toHaveLength(0);
    expect((await onB.client.event('member_leave')).data.guild_id).toBe(g.guildId);

    a.publish({ kind: 'sessions_revoked', userId: kicked.id, sessionIds: 'all' });
    await onB.client.event('session_revoked');
    expect((await onB.client.closed).code).toBe(4001);
  });

  it('keeps a user with sockets on both nodes online until the last one, on either node, closes', async () => {
    const owner = await user();
    const roamer = await user();
    const watcher = await user();
    const guild = await seedGuildRows(database.db, owner.id, [roamer.id, watcher.id]);
    const { client: watching } = await GatewayClient.ready(a.wsUrl, watcher.token);
    const statuses = () =>
      watching
        .events('presence_update')
        .filter((f) => f.data.user_id === roamer.id && f.data.guild_id === guild.guildId)
        .map((f) => f.data.status);
    const onA = (await GatewayClient.ready(a.wsUrl, roamer.token)).client;
    await watching.event('presence_update', (d) => d.user_id === roamer.id && d.status === 'online');
    // A second socket on the other node: already online, nothing announced.
    const onB = (await GatewayClient.ready(b.wsUrl, roamer.token)).client;
    expect((await onB.request('presence', { status: 'dnd' })).ok).toBe(true);
    await watching.event('presence_update', (d) => d.user_id === roamer.id && d.status === 'dnd');
    // The node-A socket closes: node B still holds the user, so no offline after the grace.
    onA.close();
    await new Promise((r) => setTimeout(r, PRESENCE_GRACE_MS + 500));
    // A barrier through the bus: a later announcement from node B arrives after anything node A sent.
    const other = await user();
    await database.db('guild_members').insert({ guild_id: guild.guildId, user_id: other.id, joined_at: nowMs() });
    const otherSocket = (await GatewayClient.ready(b.wsUrl, other.token)).client;
    await watching.event('presence_update', (d) => d.user_id === other.id && d.status === 'online');
    expect(statuses()).toEqual(['online', 'dnd']);
    // A third party connecting to node A sees the status chosen on node B in its ready.
    const late = await user();
    await database.db('guild_members').insert({ guild_id: guild.guildId, user_id: late.id, joined_at: nowMs() });
    const { client: lateSocket, ready } = await GatewayClient.ready(a.wsUrl, late.token);
    const snapshot = ready.data.guilds.find((x: { id: string }) => x.id === guild.guildId).presences;
    expect(snapshot).toContainEqual({ user_id: roamer.id, status: 'dnd' });
    // The last socket (on node B) closes: offline, once.
    onB.close();
    await watching.event('presence_update', (d) => d.user_id === roamer.id && d.status === 'offline', 5000);
    expect(statuses()).toEqual(['online', 'dnd', 'offline']);
    for (const c of [watching, otherSocket, lateSocket]) c.close();
  });
});
