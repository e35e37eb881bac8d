/**
 * DM channels (issue 10 item 1): 1:1 and group DMs, the same pair always gets the same channel (also
 * when requests race), no cold DMs to strangers (unless admin), only participants read and post, DM
 * messages must be encrypted (service and database), `ready` lists DMs, DM events reach participants
 * only, leaving a group DM rotates its Megolm sessions for the others.
 */
import { describe, expect, it } from 'vitest';
import { translateDbError } from '../../src/db/errors.js';
import { newId, nowMs } from '../../src/ids.js';
import { api, createUser, type TestUser } from '../support/factories.js';
import { ok, seedGuildRows } from '../support/guilds.js';
import { useTestServer } from '../support/server.js';
import { GatewayClient } from '../support/ws.js';

const server = useTestServer({ VOICECHAT_RATE_LIMIT_SCALE: '50' });

async function people() {
  const [a, b, c, stranger] = (await Promise.all([1, 2, 3, 4].map(() => createUser(server)))) as TestUser[] as [
    TestUser,
    TestUser,
    TestUser,
    TestUser,
  ];
  const g = await seedGuildRows(server.db, a.id, [b.id, c.id]);
  return { a, b, c, stranger, g };
}

const dm = (user: TestUser, ids: string[]) => api(server, 'POST', '/api/dm', { user, body: { recipient_ids: ids } });
const encrypted = { content: '{"algorithm":"olm","type":1,"body":"AwogZm9v"}', encrypted: true, nonce: 'n-1' };

describe('DM channels', () => {
  it('a 1:1 pair always gets the same channel, from either side and under a race', async () => {
    const { a, b, c } = await people();
    const first = await ok(dm(a, [b.id]), 201);
    expect(first).toMatchObject({ type: 'dm', guild_id: null, recipient_ids: [b.id] });
    const again = await ok(dm(a, [b.id]), 200);
    expect(again.id).toBe(first.id);
    const reverse = await ok(dm(b, [a.id]), 200);
    expect(reverse).toMatchObject({ id: first.id, recipient_ids: [a.id] });
    // A fresh pair opened by ten concurrent requests: one channel.
    const raced = await Promise.all(Array.from({ length: 10 }, (_, i) => dm(i % 2 ? b : c, [i % 2 ? c.id : b.id])));
    for (const r of raced) expect([200, 201], JSON.stringify(r.body)).toContain(r.status);
    expect(new Set(raced.map((r) => r.body.id)).size).toBe(1);
    expect(raced.filter((r) => r.status === 201)).toHaveLength(1);
    const rows = await server
      .db('channels')
      .where({ type: 'dm' })
      .whereIn('dm_key', [[b.id, c.id].sort().join(':')]);
    expect(rows).toHaveLength(1);
  });

  it('a group DM has 2–9 recipients, and each sees the others as recipients', async () => {
    const { a, b, c } = await people();
    const group = await ok(dm(a, [b.id, c.id]), 201);
    expect(group.type).toBe('group_dm');
    expect(group.recipient_ids).toEqual([b.id, c.id].sort());
    const again = await ok(dm(a, [b.id, c.id]), 201);
    expect(again.id).not.toBe(group.id); // groups are not deduplicated: a new conversation each time
    const listed = await ok(api(server, 'GET', '/api/dm', { user: c }));
    const seen = listed.find((d: { id: string }) => d.id === group.id);
    expect(seen.recipient_ids).toEqual([a.id, b.id].sort());
    const ten = Array.from({ length: 10 }, () => newId());
    expect((await dm(a, ten)).status).toBe(400);
    expect((await dm(a, [])).status).toBe(400);
    expect((await dm(a, [a.id])).status).toBe(400);
    expect((await dm(a, ['not-an-id'])).status).toBe(400);
  });

  it('no DM with an unknown or unrelated user (404, nothing stored); an admin may', async () => {
    const { a, b, stranger } = await people();
    const before = await server.db('channels').count({ n: '*' }).first();
    const unknown = await dm(a, [newId()]);
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('NOT_FOUND');
    const unrelated = await dm(a, [stranger.id]);
    expect(unrelated.status).toBe(404);
    expect(unrelated.body).toEqual(unknown.body); // no existence leak
    expect((await dm(a, [b.id, stranger.id])).status).toBe(404);
    const after = await server.db('channels').count({ n: '*' }).first();
    expect(Number(after?.n)).toBe(Number(before?.n));
    const admin = await createUser(server, { isAdmin: true });
    await ok(dm(admin, [stranger.id]), 201);
    const audit = await server.db('audit_log').where({ action: 'dm.create', user_id: admin.id });
    expect(audit).toHaveLength(1);
  });

  it('only participants read and post; DM messages must be encrypted (service and database)', async () => {
    const { a, b, stranger } = await people();
    const channel = await ok(dm(a, [b.id]), 201);
    const path = `/api/channels/${channel.id}/messages`;
    const plain = await api(server, 'POST', path, { user: a, body: { content: 'hello in clear' } });
    expect(plain.status).toBe(400);
    expect(plain.body.error.code).toBe('VALIDATION_FAILED');
    const sent = await ok(api(server, 'POST', path, { user: a, body: encrypted }), 201);
    expect(sent).toMatchObject({ encrypted: true, nonce: 'n-1' });
    expect(await ok(api(server, 'GET', path, { user: b }))).toHaveLength(1);
    for (const [method, body] of [
      ['GET', undefined],
      ['POST', encrypted],
    ] as const) {
      const r = await api(server, method, path, { user: stranger, ...(body ? { body } : {}) });
      expect(r.status).toBe(404);
    }
    expect((await api(server, 'GET', `/api/channels/${channel.id}/messages`, { user: stranger })).status).toBe(404);
    // The database refuses a plaintext row in a DM channel on its own (dm_requires_encryption).
    const row = { id: newId(), channel_id: channel.id, author_id: a.id, content: 'x', created_at: nowMs() };
    const err = await server
      .db('messages')
      .insert({ ...row, encrypted: false })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeDefined();
    expect(translateDbError(err)?.details?.[0]?.path).toBe('dm_requires_encryption');
    await server.db('messages').insert({ ...row, id: newId(), encrypted: true, nonce: 'n' });
    const rows = await server.db('messages').where({ channel_id: channel.id });
    expect(rows.every((m: { encrypted: unknown }) => Boolean(m.encrypted))).toBe(true);
  });

  it('ready lists DMs; DM events reach participants only; a new DM subscribes its participants', async () => {
    const { a, b, c, stranger } = await people();
    const existing = await ok(dm(a, [b.id]), 201);
    const { client: bWs, ready } = await GatewayClient.ready(server.wsUrl, b.accessToken);
    const { client: sWs } = await GatewayClient.ready(server.wsUrl, stranger.accessToken);
    try {
      expect(ready.data.dm_channels.map((d: { id: string }) => d.id)).toContain(existing.id);
      const listed = ready.data.dm_channels.find((d: { id: string }) => d.id === existing.id);
      expect(listed.recipient_ids).toEqual([a.id]);
      // A DM opened while B is connected: B is subscribed before the first message arrives.
      const group = await ok(dm(c, [a.id, b.id]), 201);
      await bWs.event('channel_create', (d) => d.id === group.id);
      const msg = await ok(
        api(server, 'POST', `/api/channels/${group.id}/messages`, { user: c, body: encrypted }),
        201,
      );
      await bWs.event('message_new', (d) => d.id === msg.id);
      // Barrier for the stranger: a pong after the message was published.
      sWs.send({ type: 'ping' });
      await sWs.event('pong');
      expect(sWs.frames.filter((f) => f.data?.channel_id === group.id || f.data?.id === group.id)).toEqual([]);
    } finally {
      bWs.close();
      sWs.close();
    }
  });

  it('leaving a group DM: the leaver loses access, the others get megolm_session_rotation', async () => {
    const { a, b, c } = await people();
    const group = await ok(dm(a, [b.id, c.id]), 201);
    await ok(
      api(server, 'POST', `/api/channels/${group.id}/megolm-sessions`, {
        user: a,
        body: { session_id: 'sess1', sender_key: 'A'.repeat(43), session_data: 'exported-session' },
      }),
      201,
    );
    const { client: aWs } = await GatewayClient.ready(server.wsUrl, a.accessToken);
    const { client: cWs } = await GatewayClient.ready(server.wsUrl, c.accessToken);
    try {
      expect((await api(server, 'POST', `/api/dm/${group.id}/leave`, { user: c })).status).toBe(204);
      await aWs.event('megolm_session_rotation', (d) => d.channel_id === group.id);
      cWs.send({ type: 'ping' });
      await cWs.event('pong');
      expect(cWs.events('megolm_session_rotation')).toEqual([]);
      const sessions = await server.db('megolm_sessions').where({ channel_id: group.id });
      expect(sessions.every((s: { expired_at: unknown }) => s.expired_at !== null)).toBe(true);
      const path = `/api/channels/${group.id}/messages`;
      expect((await api(server, 'GET', path, { user: c })).status).toBe(404);
      expect((await api(server, 'POST', path, { user: c, body: encrypted })).status).toBe(404);
      expect(await ok(api(server, 'GET', '/api/dm', { user: c }))).toEqual([]);
      expect((await api(server, 'POST', `/api/dm/${group.id}/leave`, { user: c })).status).toBe(404);
      const aView = await ok(api(server, 'GET', '/api/dm', { user: a }));
      expect(aView.find((d: { id: string }) => d.id === group.id).recipient_ids).toEqual([b.id]);
      // Someone else's or a guild channel id is not a DM to leave.
      const { g } = await people();
      expect((await api(server, 'POST', `/api/dm/${g.textChannelId}/leave`, { user: a })).status).toBe(404);
      expect((await api(server, 'POST', `/api/dm/${newId()}/leave`, { user: a })).status).toBe(404);
    } finally {
      aWs.close();
      cWs.close();
    }
  });
});
