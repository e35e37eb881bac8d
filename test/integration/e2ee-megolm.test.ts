/**
 * The Megolm session store (issue 10 items 5 and 6): session data sealed at rest under the channel's
 * HKDF key with AAD `megolm:<channel>:<session>` (the raw value is ciphertext; moved to another row it
 * does not open and is never served), members only (404), and rotation when a member leaves, is
 * kicked or is banned from a guild whose channels carry sessions.
 */
import { describe, expect, it } from 'vitest';
import { DecryptError } from '../../src/crypto/aead.js';
import { openMegolmSessionData } from '../../src/crypto/megolm.js';
import { newId, nowMs } from '../../src/ids.js';
import { api, type TestUser } from '../support/factories.js';
import { ok, seedGuild } from '../support/guilds.js';
import { useTestServer } from '../support/server.js';
import { GatewayClient } from '../support/ws.js';

const server = useTestServer({ VOICECHAT_RATE_LIMIT_SCALE: '20' });

const SENDER_KEY = Buffer.alloc(32, 9).toString('base64').replace(/=+$/, '');
const sessionsPath = (channelId: string) => `/api/channels/${channelId}/megolm-sessions`;
const store = (user: TestUser, channelId: string, sessionId: string, data: string) =>
  api(server, 'POST', sessionsPath(channelId), {
    user,
    body: { session_id: sessionId, sender_key: SENDER_KEY, session_data: data },
  });

describe('Megolm session store', () => {
  it('stores only ciphertext; a value moved to another channel or session does not open and is not served', async () => {
    const fx = await seedGuild(server);
    const secret = `exported-megolm-session-${newId()}`;
    const created = await ok(store(fx.member, fx.textChannelId, 'sess-A', secret), 201);
    expect(created).toMatchObject({ session_id: 'sess-A', sender_key: SENDER_KEY, sender_user_id: fx.member.id });
    expect(created.session_data).toBe(secret);
    const raw = await server.db('megolm_sessions').where({ channel_id: fx.textChannelId }).first();
    const megolmKeyId = server.keyring.active('megolm').id;
    expect(raw.session_data.startsWith(`v1.${megolmKeyId}.`)).toBe(true);
    expect(raw.session_data).not.toContain(secret);
    expect(raw.session_data).not.toContain(Buffer.from(secret).toString('base64'));
    expect(openMegolmSessionData(server.keyring, fx.textChannelId, 'sess-A', raw.session_data).toString()).toBe(secret);
    // Members read it back in clear.
    expect(await ok(api(server, 'GET', sessionsPath(fx.textChannelId), { user: fx.owner }))).toEqual([
      expect.objectContaining({ session_id: 'sess-A', session_data: secret, expired_at: null }),
    ]);
    // The same ciphertext copied to another channel's row, or to another session id, does not open.
    expect(() => openMegolmSessionData(server.keyring, fx.voiceChannelId, 'sess-A', raw.session_data)).toThrow(
      DecryptError,
    );
    expect(() => openMegolmSessionData(server.keyring, fx.textChannelId, 'sess-B', raw.session_data)).toThrow(
      DecryptError,
    );
    const copy = { ...raw, id: newId(), channel_id: fx.voiceChannelId, created_at: nowMs() };
    await server.db('megolm_sessions').insert(copy);
    await server.db('megolm_sessions').insert({ ...raw, id: newId(), session_id: 'sess-B', created_at: nowMs() });
    expect(await ok(api(server, 'GET', sessionsPath(fx.voiceChannelId), { user: fx.owner }))).toEqual([]);
    const listed = await ok(api(server, 'GET', sessionsPath(fx.textChannelId), { user: fx.owner }));
    expect(listed.map((s: { session_id: string }) => s.session_id)).toEqual(['sess-A']);
    expect(server.logs.join('\n')).not.toContain(secret);
  });

  it('members only: outsiders, banned users, hidden channels and unknown ids are 404; bad input 400; duplicates 409', async () => {
    const fx = await seedGuild(server);
    await ok(store(fx.owner, fx.hiddenChannelId, 'staff-1', 'x'), 201);
    for (const [user, channel] of [
      [fx.outsider, fx.textChannelId],
      [fx.banned, fx.textChannelId],
      [fx.member, fx.hiddenChannelId],
      [fx.member, newId()],
      [fx.member, 'nope'],
    ] as const) {
      expect((await api(server, 'GET', sessionsPath(channel), { user })).status).toBe(404);
      expect((await store(user, channel, 'x1', 'data')).status).toBe(404);
    }
    expect(await server.db('megolm_sessions').where({ session_id: 'x1' })).toEqual([]);
    for (const body of [
      { session_id: 'ok', sender_key: 'short', session_data: 'x' },
      { session_id: '', sender_key: SENDER_KEY, session_data: 'x' },
      { session_id: 'bad id!', sender_key: SENDER_KEY, session_data: 'x' },
      { session_id: 'ok', sender_key: SENDER_KEY, session_data: '' },
      { session_id: 'ok', sender_key: SENDER_KEY },
    ]) {
      expect((await api(server, 'POST', sessionsPath(fx.textChannelId), { user: fx.member, body })).status).toBe(400);
    }
    await ok(store(fx.member, fx.textChannelId, 'dup', 'one'), 201);
    expect((await store(fx.owner, fx.textChannelId, 'dup', 'two')).status).toBe(409);
    const listed = await ok(api(server, 'GET', sessionsPath(fx.textChannelId), { user: fx.member }));
    expect(listed.find((s: { session_id: string }) => s.session_id === 'dup').session_data).toBe('one');
  });
});

describe('rotation on guild departures', () => {
  for (const how of ['leave', 'kick', 'ban'] as const) {
    it(`${how}: the guild's channels with sessions expire them and the remaining members are told`, async () => {
      const fx = await seedGuild(server);
      await ok(store(fx.owner, fx.textChannelId, `s-${how}`, 'data'), 201);
      const { client: ownerWs } = await GatewayClient.ready(server.wsUrl, fx.owner.accessToken);
      const { client: leaverWs } = await GatewayClient.ready(server.wsUrl, fx.member.accessToken);
      try {
        const g = `/api/guilds/${fx.guildId}`;
        const res =
          how === 'leave'
            ? await api(server, 'POST', `${g}/leave`, { user: fx.member })
            : how === 'kick'
              ? await api(server, 'DELETE', `${g}/members/${fx.member.id}`, { user: fx.owner })
              : await api(server, 'PUT', `${g}/bans/${fx.member.id}`, { user: fx.owner, body: {} });
        expect(res.status).toBe(204);
        const rotation = await ownerWs.event('megolm_session_rotation');
        expect(rotation.data).toEqual({ channel_id: fx.textChannelId });
        // Only the channel that carried sessions rotates; the leaver hears nothing of it.
        ownerWs.send({ type: 'ping' });
        await ownerWs.event('pong');
        expect(ownerWs.events('megolm_session_rotation')).toHaveLength(1);
        leaverWs.send({ type: 'ping' });
        await leaverWs.event('pong');
        expect(leaverWs.events('megolm_session_rotation')).toEqual([]);
        const rows = await server.db('megolm_sessions').where({ channel_id: fx.textChannelId });
        expect(rows.every((r: { expired_at: unknown }) => r.expired_at !== null)).toBe(true);
      } finally {
        ownerWs.close();
        leaverWs.close();
      }
    });
  }

  it('a departure from a guild without sessions sends no rotation', async () => {
    const fx = await seedGuild(server);
    const { client: ownerWs } = await GatewayClient.ready(server.wsUrl, fx.owner.accessToken);
    try {
      await ok(api(server, 'POST', `/api/guilds/${fx.guildId}/leave`, { user: fx.member }), 204);
      await ownerWs.event('member_leave', (d) => d.user_id === fx.member.id);
      ownerWs.send({ type: 'ping' });
      await ownerWs.event('pong');
      expect(ownerWs.events('megolm_session_rotation')).toEqual([]);
    } finally {
      ownerWs.close();
    }
  });
});
