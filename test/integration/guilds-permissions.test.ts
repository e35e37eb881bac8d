/**
 * Guild authorization over real HTTP: the permission matrix (owner / admin role / moderator role /
 * plain member / non-member / banned user × every endpoint, exact statuses), @everyone escalation,
 * the role hierarchy and IDOR across guilds.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { EVERYONE_FORBIDDEN, P, type PermissionName, toWire } from '../../src/access/permissions.js';
import { api, createUser, type TestUser } from '../support/factories.js';
import { type GuildFixture, joinGuild, ok, seedGuild } from '../support/guilds.js';
import { type TestServer, useTestServer } from '../support/server.js';

type ActorName = 'owner' | 'admin' | 'moderator' | 'member' | 'outsider' | 'banned';
const ACTORS: ActorName[] = ['owner', 'admin', 'moderator', 'member', 'outsider', 'banned'];

interface Call {
  method: string;
  path: string;
  body?: unknown;
  raw?: { body: Buffer; headers: Record<string, string> };
  /** Run the call against another fixture (destructive columns get a fresh guild per cell). */
  fx?: GuildFixture;
}

interface Column {
  name: string;
  prepare: (fx: GuildFixture, s: TestServer) => Promise<Call>;
  expect: Record<ActorName, number>;
}

const st = (o: number, a: number, m: number, u: number, x: number, b: number): Record<ActorName, number> => ({
  owner: o,
  admin: a,
  moderator: m,
  member: u,
  outsider: x,
  banned: b,
});

async function freshRole(s: TestServer, fx: GuildFixture): Promise<string> {
  const r = await ok(
    api(s, 'POST', `/api/guilds/${fx.guildId}/roles`, { user: fx.owner, body: { name: 'temp', position: 1 } }),
    201,
  );
  return r.id;
}
async function freshChannel(s: TestServer, fx: GuildFixture): Promise<string> {
  const c = await ok(
    api(s, 'POST', `/api/guilds/${fx.guildId}/channels`, { user: fx.owner, body: { name: 'temp', type: 'text' } }),
    201,
  );
  return c.id;
}
async function freshMember(s: TestServer, fx: GuildFixture): Promise<TestUser> {
  const u = await createUser(s);
  await joinGuild(s, fx.owner, fx.guildId, u);
  return u;
}
async function memberMessage(s: TestServer, fx: GuildFixture): Promise<string> {
  const m = await ok(
    api(s, 'POST', `/api/channels/${fx.textChannelId}/messages`, { user: fx.member, body: { content: 'from member' } }),
    201,
  );
  return m.id;
}
async function upload(s: TestServer, fx: GuildFixture, user: TestUser): Promise<string> {
  const r = await fetch(`${s.url}/api/channels/${fx.textChannelId}/attachments`, {
    method: 'POST',
    headers: { authorization: user.headers.authorization!, 'content-type': 'text/plain', 'x-filename': 'n.txt' },
    body: 'note',
  });
  expect(r.status).toBe(201);
  return ((await r.json()) as { id: string }).id;
}

const COLUMNS: Column[] = [
  {
    name: 'GET guilds',
    prepare: async () => ({ method: 'GET', path: '/api/guilds' }),
    expect: st(200, 200, 200, 200, 200, 200),
  },
  {
    name: 'GET guild',
    prepare: async (fx) => ({ method: 'GET', path: `/api/guilds/${fx.guildId}` }),
    expect: st(200, 200, 200, 200, 404, 404),
  },
  {
    name: 'PATCH guild',
    prepare: async (fx) => ({ method: 'PATCH', path: `/api/guilds/${fx.guildId}`, body: { name: 'renamed' } }),
    expect: st(200, 200, 403, 403, 404, 404),
  },
  {
    name: 'DELETE guild',
    prepare: async (_fx, s) => {
      const fx = await seedGuild(s, 'doomed');
      return { method: 'DELETE', path: `/api/guilds/${fx.guildId}`, fx };
    },
    expect: st(204, 403, 403, 403, 404, 404),
  },
  {
    name: 'POST leave',
    prepare: async (_fx, s) => {
      const fx = await seedGuild(s, 'leaving');
      return { method: 'POST', path: `/api/guilds/${fx.guildId}/leave`, fx };
    },
    expect: st(403, 204, 204, 204, 404, 404),
  },
  {
    name: 'GET members',
    prepare: async (fx) => ({ method: 'GET', path: `/api/guilds/${fx.guildId}/members` }),
    expect: st(200, 200, 200, 200, 404, 404),
  },
  {
    name: 'DELETE member (kick)',
    prepare: async (fx, s) => ({
      method: 'DELETE',
      path: `/api/guilds/${fx.guildId}/members/${(await freshMember(s, fx)).id}`,
    }),
    expect: st(204, 204, 204, 403, 404, 404),
  },
  {
    name: 'GET bans',
    prepare: async (fx) => ({ method: 'GET', path: `/api/guilds/${fx.guildId}/bans` }),
    expect: st(200, 200, 200, 403, 404, 404),
  },
  {
    name: 'PUT ban',
    prepare: async (fx, s) => ({
      method: 'PUT',
      path: `/api/guilds/${fx.guildId}/bans/${(await freshMember(s, fx)).id}`,
      body: { reason: 'spam' },
    }),
    expect: st(204, 204, 204, 403, 404, 404),
  },
  {
    name: 'DELETE ban',
    prepare: async (fx, s) => {
      const u = await createUser(s);
      await ok(api(s, 'PUT', `/api/guilds/${fx.guildId}/bans/${u.id}`, { user: fx.owner, body: {} }), 204);
      return { method: 'DELETE', path: `/api/guilds/${fx.guildId}/bans/${u.id}` };
    },
    expect: st(204, 204, 204, 403, 404, 404),
  },
  {
    name: 'GET roles',
    prepare: async (fx) => ({ method: 'GET', path: `/api/guilds/${fx.guildId}/roles` }),
    expect: st(200, 200, 200, 200, 404, 404),
  },
  {
    name: 'POST role',
    prepare: async (fx) => ({
      method: 'POST',
      path: `/api/guilds/${fx.guildId}/roles`,
      body: { name: 'new', permissions: '1', position: 1 },
    }),
    expect: st(201, 201, 201, 403, 404, 404),
  },
  {
    name: 'PATCH role',
    prepare: async (fx, s) => ({
      method: 'PATCH',
      path: `/api/guilds/${fx.guildId}/roles/${await freshRole(s, fx)}`,
      body: { color: '#112233' },
    }),
    expect: st(200, 200, 200, 403, 404, 404),
  },
  {
    name: 'DELETE role',
    prepare: async (fx, s) => ({ method: 'DELETE', path: `/api/guilds/${fx.guildId}/roles/${await freshRole(s, fx)}` }),
    expect: st(204, 204, 204, 403, 404, 404),
  },
  {
    name: 'PUT member role',
    prepare: async (fx, s) => ({
      method: 'PUT',
      path: `/api/guilds/${fx.guildId}/members/${fx.member.id}/roles/${await freshRole(s, fx)}`,
    }),
    expect: st(204, 204, 204, 403, 404, 404),
  },
  {
    name: 'DELETE member role',
    prepare: async (fx, s) => {
      const role = await freshRole(s, fx);
      await ok(
        api(s, 'PUT', `/api/guilds/${fx.guildId}/members/${fx.member.id}/roles/${role}`, { user: fx.owner }),
        204,
      );
      return { method: 'DELETE', path: `/api/guilds/${fx.guildId}/members/${fx.member.id}/roles/${role}` };
    },
    expect: st(204, 204, 204, 403, 404, 404),
  },
  {
    name: 'GET invites',
    prepare: async (fx) => ({ method: 'GET', path: `/api/guilds/${fx.guildId}/invites` }),
    expect: st(200, 200, 200, 200, 404, 404),
  },
  {
    name: 'POST invite',
    prepare: async (fx) => ({
      method: 'POST',
      path: `/api/guilds/${fx.guildId}/invites`,
      body: { max_uses: 1, expires_in: 60 },
    }),
    expect: st(201, 201, 201, 201, 404, 404),
  },
  {
    name: "DELETE someone else's invite",
    prepare: async (fx, s) => {
      const inv = await ok(api(s, 'POST', `/api/guilds/${fx.guildId}/invites`, { user: fx.owner, body: {} }), 201);
      return { method: 'DELETE', path: `/api/guilds/${fx.guildId}/invites/${inv.code}` };
    },
    expect: st(204, 204, 403, 403, 404, 404),
  },
  {
    name: 'POST join by invite',
    prepare: async (_fx, s) => {
      const fx = await seedGuild(s, 'joinable');
      const inv = await ok(api(s, 'POST', `/api/guilds/${fx.guildId}/invites`, { user: fx.owner, body: {} }), 201);
      return { method: 'POST', path: `/api/invites/${inv.code}/join`, fx };
    },
    expect: st(200, 200, 200, 200, 200, 403),
  },
  {
    name: 'GET channels',
    prepare: async (fx) => ({ method: 'GET', path: `/api/guilds/${fx.guildId}/channels` }),
    expect: st(200, 200, 200, 200, 404, 404),
  },
  {
    name: 'POST channel',
    prepare: async (fx) => ({
      method: 'POST',
      path: `/api/guilds/${fx.guildId}/channels`,
      body: { name: 'voice-2', type: 'voice', user_limit: 5 },
    }),
    expect: st(201, 201, 201, 403, 404, 404),
  },
  {
    name: 'GET channel',
    prepare: async (fx) => ({ method: 'GET', path: `/api/channels/${fx.textChannelId}` }),
    expect: st(200, 200, 200, 200, 404, 404),
  },
  {
    name: 'GET hidden channel',
    prepare: async (fx, s) => {
      const ch = await freshChannel(s, fx);
      await ok(
        api(s, 'PUT', `/api/channels/${ch}/overrides/${fx.everyoneRoleId}`, {
          user: fx.owner,
          body: { allow: '0', deny: toWire(P.VIEW_CHANNEL) },
        }),
      );
      return { method: 'GET', path: `/api/channels/${ch}` };
    },
    expect: st(200, 200, 404, 404, 404, 404),
  },
  {
    name: 'PATCH channel',
    prepare: async (fx, s) => ({
      method: 'PATCH',
      path: `/api/channels/${await freshChannel(s, fx)}`,
      body: { topic: 'new topic' },
    }),
    expect: st(200, 200, 200, 403, 404, 404),
  },
  {
    name: 'DELETE channel',
    prepare: async (fx, s) => ({ method: 'DELETE', path: `/api/channels/${await freshChannel(s, fx)}` }),
    expect: st(204, 204, 204, 403, 404, 404),
  },
  {
    name: 'PUT override',
    prepare: async (fx, s) => ({
      method: 'PUT',
      path: `/api/channels/${await freshChannel(s, fx)}/overrides/${fx.lowRoleId}`,
      body: { allow: '0', deny: toWire(P.SEND_MESSAGES) },
    }),
    expect: st(200, 200, 200, 403, 404, 404),
  },
  {
    name: 'DELETE override',
    prepare: async (fx, s) => {
      const ch = await freshChannel(s, fx);
      await ok(
        api(s, 'PUT', `/api/channels/${ch}/overrides/${fx.lowRoleId}`, {
          user: fx.owner,
          body: { allow: '0', deny: '1' },
        }),
      );
      return { method: 'DELETE', path: `/api/channels/${ch}/overrides/${fx.lowRoleId}` };
    },
    expect: st(204, 204, 204, 403, 404, 404),
  },
  {
    name: 'GET audit-log',
    prepare: async (fx) => ({ method: 'GET', path: `/api/guilds/${fx.guildId}/audit-log` }),
    expect: st(200, 200, 200, 403, 404, 404),
  },
  {
    name: 'GET messages',
    prepare: async (fx) => ({ method: 'GET', path: `/api/channels/${fx.textChannelId}/messages` }),
    expect: st(200, 200, 200, 200, 404, 404),
  },
  {
    name: 'POST message',
    prepare: async (fx) => ({
      method: 'POST',
      path: `/api/channels/${fx.textChannelId}/messages`,
      body: { content: 'hello' },
    }),
    expect: st(201, 201, 201, 201, 404, 404),
  },
  {
    name: "PATCH member's message",
    prepare: async (fx, s) => ({
      method: 'PATCH',
      path: `/api/messages/${await memberMessage(s, fx)}`,
      body: { content: 'edited' },
    }),
    expect: st(403, 403, 403, 200, 404, 404),
  },
  {
    name: "DELETE member's message",
    prepare: async (fx, s) => ({ method: 'DELETE', path: `/api/messages/${await memberMessage(s, fx)}` }),
    expect: st(204, 204, 204, 204, 404, 404),
  },
  {
    name: 'POST attachment',
    prepare: async (fx) => ({
      method: 'POST',
      path: `/api/channels/${fx.textChannelId}/attachments`,
      raw: {
        body: Buffer.from('plain text note'),
        headers: { 'content-type': 'application/octet-stream', 'x-filename': 'note.txt' },
      },
    }),
    expect: st(201, 201, 201, 201, 404, 404),
  },
  {
    name: 'GET attachment',
    prepare: async (fx, s) => {
      const id = await upload(s, fx, fx.member);
      await ok(
        api(s, 'POST', `/api/channels/${fx.textChannelId}/messages`, {
          user: fx.member,
          body: { content: 'file', attachment_ids: [id] },
        }),
        201,
      );
      return { method: 'GET', path: `/api/attachments/${id}` };
    },
    expect: st(200, 200, 200, 200, 404, 404),
  },
];

describe('guild permissions', () => {
  const server = useTestServer({ VOICECHAT_RATE_LIMIT_SCALE: '1000' });
  let fx: GuildFixture;
  beforeAll(async () => {
    fx = await seedGuild(server);
  });

  describe('permission matrix', () => {
    for (const col of COLUMNS) {
      it(col.name, async () => {
        const actual = {} as Record<ActorName, number>;
        for (const actor of ACTORS) {
          const call = await col.prepare(fx, server);
          const user = (call.fx ?? fx)[actor];
          if (call.raw) {
            const r = await fetch(server.url + call.path, {
              method: call.method,
              headers: { authorization: user.headers.authorization!, ...call.raw.headers },
              body: call.raw.body,
            });
            await r.arrayBuffer();
            actual[actor] = r.status;
          } else {
            actual[actor] = (await api(server, call.method, call.path, { user, body: call.body })).status;
          }
        }
        expect(actual).toEqual(col.expect);
      });
    }
  });

  describe('@everyone escalation', () => {
    const forbidden = (Object.keys(P) as PermissionName[]).filter((n) => (P[n] & EVERYONE_FORBIDDEN) !== 0n);

    it('covers exactly the six dangerous bits', () => {
      expect(forbidden.sort()).toEqual(
        ['ADMINISTRATOR', 'BAN_MEMBERS', 'KICK_MEMBERS', 'MANAGE_CHANNELS', 'MANAGE_GUILD', 'MANAGE_ROLES'].sort(),
      );
    });

    for (const bit of [
      'ADMINISTRATOR',
      'MANAGE_GUILD',
      'BAN_MEMBERS',
      'KICK_MEMBERS',
      'MANAGE_ROLES',
      'MANAGE_CHANNELS',
    ] as const) {
      it(`refuses ${bit} on @everyone via update, create and override, even for the owner`, async () => {
        const perms = toWire(P[bit] | P.SEND_MESSAGES | P.VIEW_CHANNEL);
        const before = await ok(api(server, 'GET', `/api/guilds/${fx.guildId}/roles`, { user: fx.owner }));
        const upd = await api(server, 'PATCH', `/api/guilds/${fx.guildId}/roles/${fx.everyoneRoleId}`, {
          user: fx.owner,
          body: { permissions: perms },
        });
        expect(upd.status).toBe(403);
        expect(upd.body.error.code).toBe('FORBIDDEN');
        // As a number too; with unknown high bits mixed in it is refused as invalid (issue 14) first.
        const asNumber = await api(server, 'PATCH', `/api/guilds/${fx.guildId}/roles/${fx.everyoneRoleId}`, {
          user: fx.owner,
          body: { permissions: Number(P[bit]) },
        });
        expect(asNumber.status).toBe(403);
        const unknownBits = await api(server, 'PATCH', `/api/guilds/${fx.guildId}/roles/${fx.everyoneRoleId}`, {
          user: fx.owner,
          body: { permissions: Number(P[bit] | (1n << 40n)) },
        });
        expect(unknownBits.status).toBe(400);
        const create = await api(server, 'POST', `/api/guilds/${fx.guildId}/roles`, {
          user: fx.owner,
          body: { name: '@everyone', permissions: perms, position: 0 },
        });
        expect(create.status).toBe(403);
        expect(create.body.error.code).toBe('FORBIDDEN');
        const ch = await freshChannel(server, fx);
        const override = await api(server, 'PUT', `/api/channels/${ch}/overrides/${fx.everyoneRoleId}`, {
          user: fx.owner,
          body: { allow: toWire(P[bit]), deny: '0' },
        });
        expect(override.status).toBe(403);
        expect(override.body.error.code).toBe('FORBIDDEN');
        const after = await ok(api(server, 'GET', `/api/guilds/${fx.guildId}/roles`, { user: fx.owner }));
        expect(after).toEqual(before);
        const everyone = after.find((r: { is_everyone: boolean }) => r.is_everyone);
        expect(BigInt(everyone.permissions) & EVERYONE_FORBIDDEN).toBe(0n);
        const overrides = await server.db('channel_overrides').where({ channel_id: ch });
        expect(overrides).toEqual([]);
      });
    }

    it('still lets the owner edit @everyone within the allowed bits', async () => {
      const res = await ok(
        api(server, 'PATCH', `/api/guilds/${fx.guildId}/roles/${fx.everyoneRoleId}`, {
          user: fx.owner,
          body: {
            permissions: toWire(
              P.VIEW_CHANNEL | P.SEND_MESSAGES | P.ATTACH_FILES | P.CREATE_INVITE | P.VOICE_CONNECT | P.VOICE_SPEAK,
            ),
          },
        }),
      );
      expect(res.is_everyone).toBe(true);
    });
  });

  describe('role hierarchy', () => {
    it('a moderator cannot edit, assign or out-rank the admin role, nor grant bits it lacks', async () => {
      const g = fx;
      const mod = g.moderator;
      const cases: [string, string, unknown][] = [
        ['PATCH', `/api/guilds/${g.guildId}/roles/${g.adminRoleId}`, { name: 'pwned' }],
        ['PATCH', `/api/guilds/${g.guildId}/roles/${g.adminRoleId}`, { permissions: '0' }],
        ['DELETE', `/api/guilds/${g.guildId}/roles/${g.adminRoleId}`, undefined],
        ['PATCH', `/api/guilds/${g.guildId}/roles/${g.modRoleId}`, { permissions: toWire(P.ADMINISTRATOR) }],
        ['PATCH', `/api/guilds/${g.guildId}/roles/${g.modRoleId}`, { name: 'own role' }],
        ['PUT', `/api/guilds/${g.guildId}/members/${mod.id}/roles/${g.adminRoleId}`, undefined],
        ['PUT', `/api/guilds/${g.guildId}/members/${g.member.id}/roles/${g.adminRoleId}`, undefined],
        ['PUT', `/api/guilds/${g.guildId}/members/${g.member.id}/roles/${g.modRoleId}`, undefined],
        ['DELETE', `/api/guilds/${g.guildId}/members/${g.admin.id}/roles/${g.adminRoleId}`, undefined],
        ['POST', `/api/guilds/${g.guildId}/roles`, { name: 'x', permissions: toWire(P.ADMINISTRATOR), position: 1 }],
        ['POST', `/api/guilds/${g.guildId}/roles`, { name: 'x', permissions: toWire(P.MANAGE_GUILD), position: 1 }],
        ['POST', `/api/guilds/${g.guildId}/roles`, { name: 'x', permissions: '0', position: 2 }],
        ['POST', `/api/guilds/${g.guildId}/roles`, { name: 'x', permissions: '0', position: 5 }],
        ['PATCH', `/api/guilds/${g.guildId}/roles/${g.lowRoleId}`, { permissions: toWire(P.MANAGE_GUILD) }],
        ['PATCH', `/api/guilds/${g.guildId}/roles/${g.lowRoleId}`, { position: 3 }],
        [
          'PUT',
          `/api/channels/${g.textChannelId}/overrides/${g.lowRoleId}`,
          { allow: toWire(P.MANAGE_GUILD), deny: '0' },
        ],
        [
          'PUT',
          `/api/channels/${g.textChannelId}/overrides/${g.adminRoleId}`,
          { allow: '0', deny: toWire(P.SEND_MESSAGES) },
        ],
        ['DELETE', `/api/guilds/${g.guildId}/members/${g.admin.id}`, undefined],
        ['DELETE', `/api/guilds/${g.guildId}/members/${g.owner.id}`, undefined],
        ['PUT', `/api/guilds/${g.guildId}/bans/${g.admin.id}`, {}],
        ['PUT', `/api/guilds/${g.guildId}/bans/${g.owner.id}`, {}],
      ];
      const rolesBefore = await server.db('roles').where({ guild_id: g.guildId }).orderBy('id');
      const memberRolesBefore = await server
        .db('member_roles')
        .where({ guild_id: g.guildId })
        .orderBy(['user_id', 'role_id']);
      for (const [method, path, body] of cases) {
        const res = await api(server, method, path, { user: mod, body });
        expect({ method, path, body, status: res.status }).toEqual({ method, path, body, status: 403 });
      }
      expect(await server.db('roles').where({ guild_id: g.guildId }).orderBy('id')).toEqual(rolesBefore);
      expect(await server.db('member_roles').where({ guild_id: g.guildId }).orderBy(['user_id', 'role_id'])).toEqual(
        memberRolesBefore,
      );
      expect(await server.db('guild_members').where({ guild_id: g.guildId, user_id: g.admin.id }).first()).toBeTruthy();
    });

    it('a moderator cannot self-assign a low-placed role carrying bits it lacks, nor change a higher member', async () => {
      const lowAdmin = await ok(
        api(server, 'POST', `/api/guilds/${fx.guildId}/roles`, {
          user: fx.owner,
          body: { name: 'low admin', permissions: toWire(P.ADMINISTRATOR), position: 1 },
        }),
        201,
      );
      for (const target of [fx.moderator.id, fx.member.id]) {
        const res = await api(server, 'PUT', `/api/guilds/${fx.guildId}/members/${target}/roles/${lowAdmin.id}`, {
          user: fx.moderator,
        });
        expect(res.status).toBe(403);
      }
      // A harmless low role may not be taken from or given to a member ranked above the moderator.
      const res = await api(server, 'PUT', `/api/guilds/${fx.guildId}/members/${fx.admin.id}/roles/${fx.lowRoleId}`, {
        user: fx.moderator,
      });
      expect(res.status).toBe(403);
      await ok(api(server, 'DELETE', `/api/guilds/${fx.guildId}/roles/${lowAdmin.id}`, { user: fx.owner }), 204);
    });

    it('a moderator may manage roles below it with bits it holds; an admin may edit the moderator role', async () => {
      await ok(
        api(server, 'PATCH', `/api/guilds/${fx.guildId}/roles/${fx.lowRoleId}`, {
          user: fx.moderator,
          body: { permissions: toWire(P.KICK_MEMBERS | P.MANAGE_MESSAGES) },
        }),
      );
      await ok(
        api(server, 'PUT', `/api/guilds/${fx.guildId}/members/${fx.member.id}/roles/${fx.lowRoleId}`, {
          user: fx.moderator,
        }),
        204,
      );
      await ok(
        api(server, 'PATCH', `/api/guilds/${fx.guildId}/roles/${fx.modRoleId}`, {
          user: fx.admin,
          body: { color: '#00ff00' },
        }),
      );
      expect(
        (
          await api(server, 'PATCH', `/api/guilds/${fx.guildId}/roles/${fx.adminRoleId}`, {
            user: fx.admin,
            body: { color: '#00ff00' },
          })
        ).status,
      ).toBe(403);
      await ok(
        api(server, 'DELETE', `/api/guilds/${fx.guildId}/members/${fx.member.id}/roles/${fx.lowRoleId}`, {
          user: fx.moderator,
        }),
        204,
      );
      await ok(
        api(server, 'PATCH', `/api/guilds/${fx.guildId}/roles/${fx.lowRoleId}`, {
          user: fx.moderator,
          body: { permissions: '0' },
        }),
      );
    });
  });

  describe('IDOR across guilds', () => {
    it("answers 404 with no data for another guild's channel, message, role, attachment, member and invite ids", async () => {
      const other = await seedGuild(server, 'other guild');
      const secret = 'top secret other-guild content';
      const msg = await ok(
        api(server, 'POST', `/api/channels/${other.textChannelId}/messages`, {
          user: other.owner,
          body: { content: secret },
        }),
        201,
      );
      const att = await upload(server, other, other.owner);
      await ok(
        api(server, 'POST', `/api/channels/${other.textChannelId}/messages`, {
          user: other.owner,
          body: { content: secret, attachment_ids: [att] },
        }),
        201,
      );
      const invite = await ok(
        api(server, 'POST', `/api/guilds/${other.guildId}/invites`, { user: other.owner, body: {} }),
        201,
      );
      const me = fx.owner; // owner of the first guild: every permission there, none in the other
      const g = fx.guildId;
      const cases: [string, string, unknown][] = [
        ['GET', `/api/guilds/${other.guildId}`, undefined],
        ['GET', `/api/guilds/${other.guildId}/members`, undefined],
        ['GET', `/api/guilds/${other.guildId}/roles`, undefined],
        ['GET', `/api/guilds/${other.guildId}/channels`, undefined],
        ['GET', `/api/guilds/${other.guildId}/audit-log`, undefined],
        ['GET', `/api/channels/${other.textChannelId}`, undefined],
        ['PATCH', `/api/channels/${other.textChannelId}`, { name: 'x' }],
        ['DELETE', `/api/channels/${other.textChannelId}`, undefined],
        ['GET', `/api/channels/${other.textChannelId}/messages`, undefined],
        ['POST', `/api/channels/${other.textChannelId}/messages`, { content: 'x' }],
        ['PUT', `/api/channels/${other.textChannelId}/overrides/${fx.lowRoleId}`, { allow: '0', deny: '0' }],
        ['PUT', `/api/channels/${fx.textChannelId}/overrides/${other.lowRoleId}`, { allow: '0', deny: '0' }],
        ['DELETE', `/api/channels/${fx.textChannelId}/overrides/${other.lowRoleId}`, undefined],
        ['PATCH', `/api/messages/${msg.id}`, { content: 'x' }],
        ['DELETE', `/api/messages/${msg.id}`, undefined],
        ['PATCH', `/api/guilds/${g}/roles/${other.adminRoleId}`, { name: 'x' }],
        ['DELETE', `/api/guilds/${g}/roles/${other.lowRoleId}`, undefined],
        ['PUT', `/api/guilds/${g}/members/${fx.member.id}/roles/${other.adminRoleId}`, undefined],
        ['DELETE', `/api/guilds/${g}/members/${other.member.id}`, undefined],
        ['PUT', `/api/guilds/${g}/members/${other.member.id}/roles/${fx.lowRoleId}`, undefined],
        ['DELETE', `/api/guilds/${g}/invites/${invite.code}`, undefined],
        ['DELETE', `/api/guilds/${g}/bans/${other.banned.id}`, undefined],
        ['GET', `/api/attachments/${att}`, undefined],
        ['POST', `/api/channels/${other.textChannelId}/attachments`, undefined],
        ['GET', '/api/channels/not-an-id', undefined],
        ['GET', `/api/guilds/${g}/roles/../../guilds/${other.guildId}`, undefined],
      ];
      for (const [method, path, body] of cases) {
        const res = await api(server, method, path, { user: me, body });
        expect({ method, path, status: res.status }).toEqual({ method, path, status: 404 });
        const text = JSON.stringify(res.body);
        expect(text).not.toContain(secret);
        expect(text).not.toContain(other.guildId);
      }
      // Body references to another guild's objects are refused too, without linking anything.
      const reply = await api(server, 'POST', `/api/channels/${fx.textChannelId}/messages`, {
        user: me,
        body: { content: 'x', reply_to: msg.id },
      });
      expect(reply.status).toBe(400);
      const steal = await api(server, 'POST', `/api/channels/${fx.textChannelId}/messages`, {
        user: me,
        body: { content: 'x', attachment_ids: [att] },
      });
      expect(steal.status).toBe(400);
      const row = await server.db('messages').where({ id: msg.id }).first();
      expect(row.content).toBe(secret);
      expect(row.deleted_at).toBeNull();
      expect((await server.db('attachments').where({ id: att }).first()).channel_id).toBe(other.textChannelId);
    });
  });
});
