/**
 * Presence (issue 14 item 3): a user's first gateway connection announces them, their last one
 * closing announces `offline` after a grace period (no flapping on reconnect or with a second
 * socket), the chosen status is remembered, and `ready` carries the current presence of guild
 * members, bounded for large guilds. Two-node behaviour is in gateway-multinode.test.ts.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { READY_PRESENCE_PER_GUILD } from '../../src/gateway/presence.js';
import { createUser, type TestUser } from '../support/factories.js';
import { addMember, type GuildRows, seedGuildRows, seedUsers } from '../support/guilds.js';
import { useTestServer } from '../support/server.js';
import { type Frame, GatewayClient } from '../support/ws.js';

const GRACE_MS = 600;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('gateway presence', () => {
  const server = useTestServer({ VOICECHAT_RATE_LIMIT_SCALE: '100', VOICECHAT_PRESENCE_GRACE_MS: String(GRACE_MS) });
  let owner: TestUser;
  let g: GuildRows;

  beforeAll(async () => {
    owner = await createUser(server);
    g = await seedGuildRows(server.db, owner.id);
  });

  async function member() {
    const u = await createUser(server);
    await addMember(server.db, g.guildId, u.id);
    return u;
  }
  const connect = async (u: TestUser) => (await GatewayClient.ready(server.wsUrl, u.accessToken)).client;
  const updatesFor = (c: GatewayClient, userId: string, from = 0) =>
    c.frames
      .slice(from)
      .filter((f: Frame) => f.type === 'presence_update' && f.data.user_id === userId)
      .map((f: Frame) => f.data.status);
  /** A barrier: an event published after everything before it (the bus keeps order). */
  async function barrier(watcher: GatewayClient) {
    const u = await member();
    const c = await connect(u);
    await watcher.event('presence_update', (d) => d.user_id === u.id && d.status === 'online');
    c.close();
  }

  it('announces the first connection, and offline only after the last one closed and the grace ran out', async () => {
    const [a, b] = [await member(), await member()];
    const watcher = await connect(b);
    const onA = await connect(a);
    const online = await watcher.event('presence_update', (d) => d.user_id === a.id);
    expect(online.data).toEqual({ guild_id: g.guildId, user_id: a.id, status: 'online' });
    const closedAt = Date.now();
    onA.close();
    await watcher.event('presence_update', (d) => d.user_id === a.id && d.status === 'offline', 5000);
    expect(Date.now() - closedAt).toBeGreaterThanOrEqual(GRACE_MS - 50);
    expect(updatesFor(watcher, a.id)).toEqual(['online', 'offline']);
  });

  it('sends nothing when a second socket stays open or the user reconnects within the grace', async () => {
    const [a, b] = [await member(), await member()];
    const watcher = await connect(b);
    const first = await connect(a);
    await watcher.event('presence_update', (d) => d.user_id === a.id && d.status === 'online');
    const mark = watcher.frames.length;
    const second = await connect(a);
    first.close();
    await sleep(GRACE_MS + 300);
    await barrier(watcher);
    // A reload: the last socket closes and a new one opens at once.
    second.close();
    await second.closed;
    const third = await connect(a);
    await sleep(GRACE_MS + 300);
    await barrier(watcher);
    expect(updatesFor(watcher, a.id, mark)).toEqual([]);
    third.close();
    await watcher.event('presence_update', (d) => d.user_id === a.id && d.status === 'offline', 5000);
  });

  it('ready carries the current presence; the chosen status is remembered; invisible shows offline', async () => {
    const [a, b, idleUser] = [await member(), await member(), await member()];
    const onA = await connect(a);
    expect((await onA.request('presence', { status: 'dnd' })).ok).toBe(true);
    const onIdle = await connect(idleUser);
    expect((await onIdle.request('presence', { status: 'idle' })).ok).toBe(true);
    const { client: watcher, ready } = await GatewayClient.ready(server.wsUrl, b.accessToken);
    const guild = ready.data.guilds.find((x: { id: string }) => x.id === g.guildId);
    const shown = Object.fromEntries(
      guild.presences.map((p: { user_id: string; status: string }) => [p.user_id, p.status]),
    );
    expect(shown[a.id]).toBe('dnd');
    expect(shown[idleUser.id]).toBe('idle');
    expect(shown[owner.id]).toBeUndefined(); // not connected
    for (const p of guild.presences) expect(['online', 'idle', 'dnd']).toContain(p.status);

    // Invisible: offline to others at once, absent from new readies, and no second offline on close.
    expect((await onA.request('presence', { status: 'invisible' })).ok).toBe(true);
    await watcher.event('presence_update', (d) => d.user_id === a.id && d.status === 'offline');
    const again = await GatewayClient.ready(server.wsUrl, (await member()).accessToken);
    const later = again.ready.data.guilds.find((x: { id: string }) => x.id === g.guildId);
    expect(later.presences.map((p: { user_id: string }) => p.user_id)).not.toContain(a.id);
    const mark = watcher.frames.length;
    onA.close();
    await sleep(GRACE_MS + 300);
    // Reconnecting later keeps the chosen status: an invisible user is not announced online.
    const back = await connect(a);
    await barrier(watcher);
    expect(updatesFor(watcher, a.id, mark)).toEqual([]);
    back.close();
    onIdle.close();
    again.client.close();
  });

  it('bounds ready presences to the first members of a large guild', async () => {
    const big = await seedGuildRows(server.db, owner.id);
    await seedUsers(server.db, big.guildId, READY_PRESENCE_PER_GUILD + 200);
    // Created after the seeded users, so their ids sort after them: past the bound.
    const late = await createUser(server);
    await addMember(server.db, big.guildId, late.id);
    const early = (await server.db('guild_members').where({ guild_id: big.guildId }).orderBy('user_id').first())
      .user_id;
    expect(early).toBe(owner.id);
    const onOwner = await connect(owner);
    const onLate = await connect(late);
    const watcherUser = await createUser(server);
    await addMember(server.db, big.guildId, watcherUser.id);
    await sleep(200); // the announcements are asynchronous to the sockets opening
    const { client, ready } = await GatewayClient.ready(server.wsUrl, watcherUser.accessToken);
    const guild = ready.data.guilds.find((x: { id: string }) => x.id === big.guildId);
    expect(guild.members_count).toBe(READY_PRESENCE_PER_GUILD + 203);
    const ids = guild.presences.map((p: { user_id: string }) => p.user_id);
    expect(ids).toContain(owner.id);
    expect(ids).not.toContain(late.id); // online, but past the first 1,000 members
    expect(ids.length).toBeLessThanOrEqual(READY_PRESENCE_PER_GUILD);
    for (const c of [client, onOwner, onLate]) c.close();
  });
});
