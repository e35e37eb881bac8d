/**
 * Issue 14 item 8, found by the attack runs: loose coercion of numbers and permission bitfields, an
 * upload sent as application/json with a body that is not JSON, and attachment names outside ASCII
 * (percent-encoded UTF-8 in X-Filename). Over real HTTP against the real server.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { P } from '../../src/access/permissions.js';
import { api, createUser, type TestUser } from '../support/factories.js';
import { type GuildFixture, joinGuild, ok, seedGuild } from '../support/guilds.js';
import { useTestServer } from '../support/server.js';

const PNG = Buffer.from(
  '89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000a49444154789c6300010000050001',
  'hex',
);

describe('strict coercion', () => {
  const server = useTestServer();
  let fx: GuildFixture;
  beforeAll(async () => {
    fx = await seedGuild(server);
  });

  it('refuses limit values that are not plain decimal digits', async () => {
    const base = `/api/channels/${fx.textChannelId}/messages`;
    for (const bad of ['0x10', '1e1', '+5', ' 5', '', '5.0', '0b11', '0', '101', '99999999999999999999']) {
      const r = await api(server, 'GET', `${base}?limit=${encodeURIComponent(bad)}`, { user: fx.member });
      expect(r.status, `limit=${bad}`).toBe(400);
      expect(r.body.error.code).toBe('VALIDATION_FAILED');
      expect(r.body.error.details?.[0]?.path).toBe('limit');
    }
    const audit = `/api/guilds/${fx.guildId}/audit-log`;
    const a = await api(server, 'GET', `${audit}?limit=0x10`, { user: fx.owner });
    expect(a.status).toBe(400);
    expect(a.body.error.code).toBe('VALIDATION_FAILED');
    // Plain decimal still works (and the default when absent).
    await ok(api(server, 'GET', `${base}?limit=16`, { user: fx.member }));
    await ok(api(server, 'GET', base, { user: fx.member }));
    await ok(api(server, 'GET', `${audit}?limit=10`, { user: fx.owner }));
  });

  it('refuses permission bitfields with unknown bits or past 64 bits instead of masking them', async () => {
    const rolePath = `/api/guilds/${fx.guildId}/roles/${fx.lowRoleId}`;
    const before = await server.db('roles').where({ id: fx.lowRoleId }).first();
    const unknownBit = (1n << 62n).toString();
    for (const bad of ['18446744073709551616', unknownBit, (P.SEND_MESSAGES | (1n << 40n)).toString(), '-1', '0x1']) {
      const r = await api(server, 'PATCH', rolePath, { user: fx.owner, body: { permissions: bad } });
      expect(r.status, `permissions=${bad}`).toBe(400);
      expect(r.body.error.code).toBe('VALIDATION_FAILED');
      const created = await api(server, 'POST', `/api/guilds/${fx.guildId}/roles`, {
        user: fx.owner,
        body: { name: 'r', permissions: bad },
      });
      expect(created.status).toBe(400);
      const override = await api(server, 'PUT', `/api/channels/${fx.textChannelId}/overrides/${fx.lowRoleId}`, {
        user: fx.owner,
        body: { allow: '0', deny: bad },
      });
      expect(override.status).toBe(400);
      expect(override.body.error.code).toBe('VALIDATION_FAILED');
    }
    // Nothing was stored in place of the refused values.
    expect(await server.db('roles').where({ id: fx.lowRoleId }).first()).toEqual(before);
    expect(await server.db('channel_overrides').where({ channel_id: fx.textChannelId, role_id: fx.lowRoleId })).toEqual(
      [],
    );
    // Known bits (string and number) are accepted and stored exactly.
    const good = (P.SEND_MESSAGES | P.ATTACH_FILES).toString();
    const r = await ok(api(server, 'PATCH', rolePath, { user: fx.owner, body: { permissions: good } }));
    expect(r.permissions).toBe(good);
    const n = await ok(
      api(server, 'PATCH', rolePath, { user: fx.owner, body: { permissions: Number(P.SEND_MESSAGES) } }),
    );
    expect(n.permissions).toBe(P.SEND_MESSAGES.toString());
  });

  it('answers 415 for an upload sent as application/json, whatever the body', async () => {
    const u: TestUser = await createUser(server);
    await joinGuild(server, fx.owner, fx.guildId, u);
    for (const body of ['not json at all', '{"valid": "json"}', PNG]) {
      const res = await fetch(`${server.url}/api/channels/${fx.textChannelId}/attachments`, {
        method: 'POST',
        headers: { authorization: u.headers.authorization!, 'content-type': 'application/json', 'x-filename': 'a.png' },
        body,
      });
      expect(res.status).toBe(415);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    }
    expect(await server.db('attachments').where({ uploader_id: u.id })).toHaveLength(0);
    // The connection and the JSON reader elsewhere still work: a bad JSON body on a JSON route is 400.
    const bad = await api(server, 'POST', `/api/channels/${fx.textChannelId}/messages`, {
      user: u,
      body: 'not json',
    });
    expect(bad.status).toBe(400);
  });

  it('accepts non-ASCII attachment names as percent-encoded UTF-8 X-Filename, cleaned as before', async () => {
    const u: TestUser = await createUser(server);
    await joinGuild(server, fx.owner, fx.guildId, u);
    const TEXT = Buffer.from('some text');
    const cases: [sent: string, body: Buffer, stored: string][] = [
      [encodeURIComponent('é.png'), PNG, 'é.png'],
      [encodeURIComponent('日本.png'), PNG, '日本.png'],
      // NFD on the wire → NFC stored; the bidi override and NUL removed after decoding.
      [encodeURIComponent('e\u0301t\u00e9 \u202Egnp.txt'), TEXT, 'été gnp.txt'],
      ['%00a%01b.txt', TEXT, 'ab.txt'],
      // Decoded separators do not survive: the last path component is kept.
      [encodeURIComponent('../../日本/x.txt'), TEXT, 'x.txt'],
      // A literal % that is not an escape is taken as it is; an encoded one decodes.
      ['50%.txt', TEXT, '50%.txt'],
      ['50%25.txt', TEXT, '50%.txt'],
      // Leading dots (after decoding) are still removed.
      ['%2E%2Ehidden.txt', TEXT, 'hidden.txt'],
    ];
    const ids: string[] = [];
    for (const [sent, body, stored] of cases) {
      await server.ctx.limits.reset('upload_user', u.id);
      const res = await fetch(`${server.url}/api/channels/${fx.textChannelId}/attachments`, {
        method: 'POST',
        headers: {
          authorization: u.headers.authorization!,
          'content-type': 'application/octet-stream',
          'x-filename': sent,
        },
        body,
      });
      const json = (await res.json()) as { id: string; filename: string };
      expect({ sent, status: res.status, filename: json.filename }).toEqual({ sent, status: 201, filename: stored });
      ids.push(json.id);
    }
    // The download names the file exactly (RFC 5987 filename*).
    const dl = await fetch(`${server.url}/api/attachments/${ids[1]}`, {
      headers: { authorization: u.headers.authorization! },
    });
    expect(dl.status).toBe(200);
    expect(dl.headers.get('content-disposition')).toContain(`filename*=UTF-8''${encodeURIComponent('日本.png')}`);
    // A type problem is still 415, whatever the name's script.
    await server.ctx.limits.reset('upload_user', u.id);
    const wrong = await fetch(`${server.url}/api/channels/${fx.textChannelId}/attachments`, {
      method: 'POST',
      headers: { authorization: u.headers.authorization!, 'x-filename': encodeURIComponent('日本.png') },
      body: TEXT,
    });
    expect(wrong.status).toBe(415);
  });
});
