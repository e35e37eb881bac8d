/**
 * Messages over real HTTP: pagination, edit and delete rules, the GDPR scrub (checked with SQL), DM
 * encryption, reply and attachment references, the moderator-delete audit, XSS content round trips,
 * SQL injection probes and the 10-per-10-s rate limit.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { newId, nowMs } from '../../src/ids.js';
import { api, createUser } from '../support/factories.js';
import { type GuildFixture, ok, seedGuild } from '../support/guilds.js';
import { useTestServer } from '../support/server.js';

const PNG = Buffer.from(
  '89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000a49444154789c6300010000050001',
  'hex',
);

describe('messages', () => {
  const server = useTestServer({ VOICECHAT_RATE_LIMIT_SCALE: '1000' });
  let fx: GuildFixture;
  beforeAll(async () => {
    fx = await seedGuild(server);
  });

  const send = (user = fx.member, body: unknown = { content: 'hi' }, channel = fx.textChannelId) =>
    api(server, 'POST', `/api/channels/${channel}/messages`, { user, body });

  it('paginates newest first with before/after cursors and bounded limits', async () => {
    const ch = (
      await ok(
        api(server, 'POST', `/api/guilds/${fx.guildId}/channels`, {
          user: fx.owner,
          body: { name: 'pages', type: 'text' },
        }),
        201,
      )
    ).id;
    const ids: string[] = [];
    for (let i = 0; i < 25; i++) ids.push((await ok(send(fx.member, { content: `m${i}` }, ch), 201)).id);
    const newestFirst = [...ids].reverse();
    const page1 = await ok(api(server, 'GET', `/api/channels/${ch}/messages?limit=10`, { user: fx.member }));
    expect(page1.map((m: any) => m.id)).toEqual(newestFirst.slice(0, 10));
    const page2 = await ok(
      api(server, 'GET', `/api/channels/${ch}/messages?limit=10&before=${page1[9].id}`, { user: fx.member }),
    );
    expect(page2.map((m: any) => m.id)).toEqual(newestFirst.slice(10, 20));
    const page3 = await ok(
      api(server, 'GET', `/api/channels/${ch}/messages?limit=10&before=${page2[9].id}`, { user: fx.member }),
    );
    expect(page3.map((m: any) => m.id)).toEqual(newestFirst.slice(20));
    const after = await ok(
      api(server, 'GET', `/api/channels/${ch}/messages?limit=5&after=${ids[4]}`, { user: fx.member }),
    );
    expect(after.map((m: any) => m.id)).toEqual(ids.slice(5, 10).reverse());
    const between = await ok(
      api(server, 'GET', `/api/channels/${ch}/messages?after=${ids[2]}&before=${ids[6]}`, { user: fx.member }),
    );
    expect(between.map((m: any) => m.id)).toEqual(ids.slice(3, 6).reverse());
    const all = await ok(api(server, 'GET', `/api/channels/${ch}/messages`, { user: fx.member }));
    expect(all).toHaveLength(25);
    for (const bad of ['limit=101', 'limit=0', 'limit=-1', 'limit=abc', 'before=xyz', "after=' OR 1=1 --"]) {
      const res = await api(server, 'GET', `/api/channels/${ch}/messages?${bad}`, { user: fx.member });
      expect(res.status, bad).toBe(400);
      expect(res.body.error.code).toBe('VALIDATION_FAILED');
    }
    const hundred = await ok(api(server, 'GET', `/api/channels/${ch}/messages?limit=100`, { user: fx.member }));
    expect(hundred).toHaveLength(25);
  });

  it('validates content length, nonce rules and voice channels', async () => {
    expect((await send(fx.member, { content: '' })).status).toBe(400);
    expect((await send(fx.member, { content: 'x'.repeat(4001) })).status).toBe(400);
    expect((await send(fx.member, { content: '😀'.repeat(4000) })).status).toBe(201); // characters, not UTF-16 units
    expect((await send(fx.member, { content: 'x'.repeat(4000) })).status).toBe(201);
    expect((await send(fx.member, { content: 'x', encrypted: true })).status).toBe(400);
    expect((await send(fx.member, { content: 'x', encrypted: true, nonce: 'n'.repeat(129) })).status).toBe(400);
    expect((await send(fx.member, { content: 'x', nonce: 'abc' })).status).toBe(400);
    expect((await send(fx.member, { content: 'x', extra: 1 })).status).toBe(400);
    expect((await send(fx.member, { content: 'nul \u0000 byte' })).status).toBe(400);
    const enc = await ok(
      send(fx.member, { content: '{"algorithm":"megolm","body":"AAAA"}', encrypted: true, nonce: 'bm9uY2U' }),
      201,
    );
    expect(enc).toMatchObject({ encrypted: true, nonce: 'bm9uY2U', content: '{"algorithm":"megolm","body":"AAAA"}' });
    expect((await send(fx.member, { content: 'x' }, fx.voiceChannelId)).status).toBe(400);
  });

  it('lets only the author edit; encrypted edits need a new nonce', async () => {
    const m = await ok(send(fx.member, { content: 'original' }), 201);
    expect(
      (await api(server, 'PATCH', `/api/messages/${m.id}`, { user: fx.owner, body: { content: 'owner edit' } })).status,
    ).toBe(403);
    const edited = await ok(
      api(server, 'PATCH', `/api/messages/${m.id}`, { user: fx.member, body: { content: 'changed' } }),
    );
    expect(edited.content).toBe('changed');
    expect(edited.edited_at).not.toBeNull();
    expect(
      (await api(server, 'PATCH', `/api/messages/${m.id}`, { user: fx.member, body: { content: 'x', nonce: 'n' } }))
        .status,
    ).toBe(400);
    const e = await ok(send(fx.member, { content: 'cipher1', encrypted: true, nonce: 'n1' }), 201);
    expect(
      (await api(server, 'PATCH', `/api/messages/${e.id}`, { user: fx.member, body: { content: 'cipher2' } })).status,
    ).toBe(400);
    expect(
      (
        await api(server, 'PATCH', `/api/messages/${e.id}`, {
          user: fx.member,
          body: { content: 'cipher2', nonce: 'n1' },
        })
      ).status,
    ).toBe(400);
    const e2 = await ok(
      api(server, 'PATCH', `/api/messages/${e.id}`, { user: fx.member, body: { content: 'cipher2', nonce: 'n2' } }),
    );
    expect(e2).toMatchObject({ content: 'cipher2', nonce: 'n2', encrypted: true });
  });

  it('refuses an edit once the author has lost SEND_MESSAGES in the channel', async () => {
    const ch = (
      await ok(
        api(server, 'POST', `/api/guilds/${fx.guildId}/channels`, {
          user: fx.owner,
          body: { name: 'muted', type: 'text' },
        }),
        201,
      )
    ).id;
    const msg = await ok(send(fx.member, { content: 'before the mute' }, ch), 201);
    await ok(
      api(server, 'PUT', `/api/channels/${ch}/overrides/${fx.everyoneRoleId}`, {
        user: fx.owner,
        body: { allow: '0', deny: String(1 << 0) },
      }),
    );
    const res = await api(server, 'PATCH', `/api/messages/${msg.id}`, {
      user: fx.member,
      body: { content: 'rewritten' },
    });
    expect(res.status).toBe(403);
    expect((await server.db('messages').where({ id: msg.id }).first()).content).toBe('before the mute');
  });

  it('scrubs deleted messages in the database itself and removes attachment files (GDPR)', async () => {
    const up = await fetch(`${server.url}/api/channels/${fx.textChannelId}/attachments`, {
      method: 'POST',
      headers: {
        authorization: fx.member.headers.authorization!,
        'content-type': 'application/octet-stream',
        'x-filename': 'me.png',
      },
      body: PNG,
    });
    expect(up.status).toBe(201);
    const attachment = (await up.json()) as { id: string };
    const m = await ok(
      send(fx.member, {
        content: 'my private words',
        encrypted: true,
        nonce: 'secret-nonce',
        attachment_ids: [attachment.id],
      }),
      201,
    );
    expect(m.attachments.map((a: any) => a.id)).toEqual([attachment.id]);
    const stored = await server.db('attachments').where({ id: attachment.id }).first();
    const file = path.join(server.config.dataDir, 'uploads', stored.storage_name);
    expect(existsSync(file)).toBe(true);

    await ok(api(server, 'DELETE', `/api/messages/${m.id}`, { user: fx.member }), 204);
    const raw = await server.db.raw('SELECT content, nonce, deleted_at FROM messages WHERE id = ?', [m.id]);
    const row = server.db.client.config.client === 'pg' ? raw.rows[0] : raw[0];
    expect(row.content).toBe('[deleted]');
    expect(row.nonce).toBeNull();
    expect(Number(row.deleted_at)).toBeGreaterThan(0);
    expect(await server.db('attachments').where({ id: attachment.id }).first()).toBeUndefined();
    expect(existsSync(file)).toBe(false);
    const text = JSON.stringify(await server.db('messages').where({ id: m.id }));
    expect(text).not.toContain('my private words');
    expect(text).not.toContain('secret-nonce');

    const list = await ok(api(server, 'GET', `/api/channels/${fx.textChannelId}/messages?limit=5`, { user: fx.owner }));
    const shown = list.find((x: any) => x.id === m.id);
    expect(shown).toMatchObject({ content: '[deleted]', nonce: null, attachments: [] });
    expect(shown.deleted_at).not.toBeNull();
    expect((await api(server, 'GET', `/api/attachments/${attachment.id}`, { user: fx.member })).status).toBe(404);
    expect(
      (await api(server, 'PATCH', `/api/messages/${m.id}`, { user: fx.member, body: { content: 'again' } })).status,
    ).toBe(404);
    expect((await api(server, 'DELETE', `/api/messages/${m.id}`, { user: fx.member })).status).toBe(204);
  });

  it('audits a moderator delete, not an author delete', async () => {
    const own = await ok(send(fx.moderator, { content: 'mine' }), 201);
    await ok(api(server, 'DELETE', `/api/messages/${own.id}`, { user: fx.moderator }), 204);
    const theirs = await ok(send(fx.member, { content: 'rule breaking' }), 201);
    await ok(api(server, 'DELETE', `/api/messages/${theirs.id}`, { user: fx.moderator }), 204);
    const rows = await server.db('audit_log').where({ action: 'message.delete_moderator' });
    expect(rows.map((r: any) => r.resource_id)).toEqual([theirs.id]);
    expect(rows[0].user_id).toBe(fx.moderator.id);
    expect(JSON.parse(rows[0].metadata)).toMatchObject({ guild_id: fx.guildId, author_id: fx.member.id });
    expect(rows[0].metadata).not.toContain('rule breaking');
    const log = await ok(api(server, 'GET', `/api/guilds/${fx.guildId}/audit-log?limit=100`, { user: fx.admin }));
    expect(log.some((r: any) => r.action === 'message.delete_moderator' && r.resource_id === theirs.id)).toBe(true);
    expect(log.map((r: any) => Number(r.id))).toEqual([...log.map((r: any) => Number(r.id))].sort((a, b) => b - a));
    const older = await ok(
      api(server, 'GET', `/api/guilds/${fx.guildId}/audit-log?limit=2&before=${log[1].id}`, { user: fx.admin }),
    );
    expect(older.map((r: any) => r.id)).toEqual(log.slice(2, 4).map((r: any) => r.id));
  });

  it('checks reply_to and attachment_ids belong to this channel and caller', async () => {
    const other = (
      await ok(
        api(server, 'POST', `/api/guilds/${fx.guildId}/channels`, {
          user: fx.owner,
          body: { name: 'other', type: 'text' },
        }),
        201,
      )
    ).id;
    const elsewhere = await ok(send(fx.member, { content: 'elsewhere' }, other), 201);
    expect((await send(fx.member, { content: 'r', reply_to: elsewhere.id })).status).toBe(400);
    expect((await send(fx.member, { content: 'r', reply_to: newId() })).status).toBe(400);
    const parent = await ok(send(fx.member, { content: 'parent' }), 201);
    const reply = await ok(send(fx.owner, { content: 'child', reply_to: parent.id }), 201);
    expect(reply.reply_to).toBe(parent.id);
    const up = await fetch(`${server.url}/api/channels/${fx.textChannelId}/attachments`, {
      method: 'POST',
      headers: { authorization: fx.member.headers.authorization!, 'x-filename': 'a.txt', 'content-type': 'text/plain' },
      body: 'text',
    });
    const att = (await up.json()) as { id: string };
    expect((await send(fx.owner, { content: 'steal', attachment_ids: [att.id] })).status).toBe(400);
    expect((await send(fx.member, { content: 'wrong channel', attachment_ids: [att.id] }, other)).status).toBe(400);
    await ok(send(fx.member, { content: 'mine', attachment_ids: [att.id] }), 201);
    expect((await send(fx.member, { content: 'twice', attachment_ids: [att.id] })).status).toBe(400);
    const count = await server.db('messages').whereIn('content', ['steal', 'wrong channel', 'twice']).count({ n: '*' });
    expect(Number(count[0]!.n)).toBe(0);
  });

  it('accepts only encrypted messages in DM channels, and only from participants', async () => {
    const [a, b, c] = [fx.member, fx.owner, fx.outsider];
    const dm = newId();
    const now = nowMs();
    await server
      .db('channels')
      .insert({ id: dm, guild_id: null, type: 'dm', name: null, position: 0, created_at: now, updated_at: now });
    await server.db('dm_participants').insert([
      { channel_id: dm, user_id: a.id, joined_at: now },
      { channel_id: dm, user_id: b.id, joined_at: now },
    ]);
    const plain = await send(a, { content: 'plaintext' }, dm);
    expect(plain.status).toBe(400);
    expect(plain.body.error.code).toBe('VALIDATION_FAILED');
    const enc = await ok(send(a, { content: '{"type":0,"body":"AwogZ"}', encrypted: true, nonce: 'n' }, dm), 201);
    expect((await send(c, { content: 'x', encrypted: true, nonce: 'n' }, dm)).status).toBe(404);
    expect((await api(server, 'GET', `/api/channels/${dm}/messages`, { user: c })).status).toBe(404);
    expect((await api(server, 'DELETE', `/api/messages/${enc.id}`, { user: c })).status).toBe(404);
    expect((await api(server, 'DELETE', `/api/messages/${enc.id}`, { user: b })).status).toBe(403);
    const list = await ok(api(server, 'GET', `/api/channels/${dm}/messages`, { user: b }));
    expect(list[0].content).toBe('{"type":0,"body":"AwogZ"}');
  });

  it('stores and returns XSS payloads byte-identical, as JSON', async () => {
    const payloads = [
      '<script>alert(1)</script>',
      '<img src=x onerror="alert(document.cookie)">',
      '"><svg/onload=alert(1)>',
      'javascript:alert(1)',
      '\u202egnp.exe \r\n crlf \\u003c \u2028',
      '{{constructor.constructor("alert(1)")()}}',
    ];
    for (const content of payloads) {
      const res = await fetch(`${server.url}/api/channels/${fx.textChannelId}/messages`, {
        method: 'POST',
        headers: fx.member.headers,
        body: JSON.stringify({ content }),
      });
      expect(res.status).toBe(201);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
      const body = (await res.json()) as { id: string; content: string };
      expect(body.content).toBe(content);
      const row = await server.db('messages').where({ id: body.id }).first();
      expect(row.content).toBe(content);
    }
    const list = await ok(
      api(server, 'GET', `/api/channels/${fx.textChannelId}/messages?limit=${payloads.length}`, { user: fx.owner }),
    );
    expect(list.map((m: any) => m.content)).toEqual([...payloads].reverse());
  });

  it('leaves data intact under SQL injection probes in every string field and query parameter', async () => {
    const probes = [
      "' OR 1=1 --",
      '"; DROP TABLE users; --',
      "%'",
      '\u2019 OR \u20181\u2019=\u20181',
      "x'); DELETE FROM messages; --",
    ];
    const tables = [
      'users',
      'guilds',
      'guild_members',
      'roles',
      'member_roles',
      'channels',
      'messages',
      'bans',
      'invites',
      'attachments',
    ];
    const counts = async () =>
      Object.fromEntries(
        await Promise.all(tables.map(async (t) => [t, Number((await server.db(t).count({ n: '*' }))[0]!.n)] as const)),
      );
    const g = await seedGuild(server, 'probe guild');
    const before = await counts();
    const usersBefore = await server.db('users').orderBy('id').select('id', 'username', 'password_hash');
    let created = { guilds: 0, roles: 0, channels: 0, messages: 0, invites: 0 };
    for (const p of probes) {
      expect((await api(server, 'POST', '/api/guilds', { user: g.owner, body: { name: p } })).status).toBe(201);
      const gid = (await ok(api(server, 'GET', '/api/guilds', { user: g.owner })))[0].id;
      expect((await ok(api(server, 'GET', `/api/guilds/${gid}`, { user: g.owner }))).name).toBe(p);
      const role = await ok(
        api(server, 'POST', `/api/guilds/${g.guildId}/roles`, { user: g.owner, body: { name: p } }),
        201,
      );
      expect(role.name).toBe(p);
      const ch = await ok(
        api(server, 'POST', `/api/guilds/${g.guildId}/channels`, {
          user: g.owner,
          body: { name: p, type: 'text', topic: p },
        }),
        201,
      );
      expect(ch).toMatchObject({ name: p, topic: p });
      const msg = await ok(send(g.member, { content: p }, g.textChannelId), 201);
      expect(msg.content).toBe(p);
      await ok(api(server, 'PATCH', `/api/messages/${msg.id}`, { user: g.member, body: { content: p } }));
      expect(
        (
          await api(server, 'PUT', `/api/guilds/${g.guildId}/bans/${g.outsider.id}`, {
            user: g.owner,
            body: { reason: p },
          })
        ).status,
      ).toBe(204);
      await ok(api(server, 'DELETE', `/api/guilds/${g.guildId}/bans/${g.outsider.id}`, { user: g.owner }), 204);
      const enc = encodeURIComponent(p);
      for (const pathProbe of [
        `/api/guilds/${enc}`,
        `/api/channels/${enc}`,
        `/api/channels/${enc}/messages`,
        `/api/messages/${enc}`,
        `/api/attachments/${enc}`,
        `/api/guilds/${g.guildId}/roles/${enc}`,
        `/api/guilds/${g.guildId}/bans/${enc}`,
      ]) {
        expect([400, 404]).toContain((await api(server, 'GET', pathProbe, { user: g.owner })).status);
      }
      expect((await api(server, 'POST', `/api/invites/${enc}/join`, { user: g.outsider })).status).toBe(404);
      expect((await api(server, 'DELETE', `/api/guilds/${g.guildId}/invites/${enc}`, { user: g.owner })).status).toBe(
        404,
      );
      expect((await api(server, 'DELETE', `/api/guilds/${g.guildId}/members/${enc}`, { user: g.owner })).status).toBe(
        404,
      );
      for (const q of ['before', 'after', 'limit']) {
        expect(
          (await api(server, 'GET', `/api/channels/${g.textChannelId}/messages?${q}=${enc}`, { user: g.owner })).status,
        ).toBe(400);
      }
      expect(
        (await api(server, 'GET', `/api/guilds/${g.guildId}/audit-log?before=${enc}`, { user: g.owner })).status,
      ).toBe(400);
      const up = await fetch(`${server.url}/api/channels/${g.textChannelId}/attachments`, {
        method: 'POST',
        headers: {
          authorization: g.member.headers.authorization!,
          'content-type': 'text/plain',
          'x-filename': `${p.replace(/[^\x20-\x7e]/g, '')}.txt`,
        },
        body: 'probe',
      });
      expect(up.status).toBe(201);
      created = {
        guilds: created.guilds + 1,
        roles: created.roles + 1,
        channels: created.channels + 1,
        messages: created.messages + 1,
        invites: created.invites,
      };
    }
    const after = await counts();
    expect(after).toEqual({
      ...before,
      guilds: before.guilds! + created.guilds,
      guild_members: before.guild_members! + created.guilds,
      // each probe guild brings its @everyone role and two channels
      roles: before.roles! + created.roles + created.guilds,
      channels: before.channels! + created.channels + created.guilds * 2,
      messages: before.messages! + created.messages,
      attachments: before.attachments! + probes.length,
    });
    expect(await server.db('users').orderBy('id').select('id', 'username', 'password_hash')).toEqual(usersBefore);
  });
});

describe('message rate limit', () => {
  const server = useTestServer();

  it('refuses the 11th message in 10 seconds with 429 and Retry-After, per user', async () => {
    const owner = await createUser(server);
    const g = await ok(api(server, 'POST', '/api/guilds', { user: owner, body: { name: 'rl' } }), 201);
    const ch = g.channels[0].id;
    for (let i = 0; i < 10; i++) {
      expect(
        (await api(server, 'POST', `/api/channels/${ch}/messages`, { user: owner, body: { content: `m${i}` } })).status,
      ).toBe(201);
    }
    const res = await api(server, 'POST', `/api/channels/${ch}/messages`, {
      user: owner,
      body: { content: 'eleventh' },
    });
    expect(res.status).toBe(429);
    expect(res.body.error.code).toBe('RATE_LIMITED');
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(Number(res.headers.get('retry-after'))).toBeLessThanOrEqual(10);
    expect(await server.db('messages').where({ content: 'eleventh' }).first()).toBeUndefined();
    const invite = await ok(api(server, 'POST', `/api/guilds/${g.id}/invites`, { user: owner, body: {} }), 201);
    const other = await createUser(server);
    await ok(api(server, 'POST', `/api/invites/${invite.code}/join`, { user: other }));
    expect(
      (await api(server, 'POST', `/api/channels/${ch}/messages`, { user: other, body: { content: 'other user' } }))
        .status,
    ).toBe(201);
  });
});
