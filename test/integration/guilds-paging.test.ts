/**
 * Member and ban lists page by user id (issue 14 item 2): `after` = the last user id of the previous
 * page, `limit` 1–1000 (default 1000). A 2,500-member guild comes back whole over three pages.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { P } from '../../src/access/permissions.js';
import { api, createUser, type TestUser } from '../support/factories.js';
import { assignRole, createRole, ok, seedGuildRows, seedUsers } from '../support/guilds.js';
import { useTestServer } from '../support/server.js';

const MEMBERS = 2500;
const BANS = 1100;

describe('member and ban list paging', () => {
  const server = useTestServer({ VOICECHAT_RATE_LIMIT_SCALE: '100' });
  let owner: TestUser;
  let plain: TestUser;
  let guildId: string;
  let memberIds: string[];
  let bannedIds: string[];
  let roleId: string;

  beforeAll(async () => {
    owner = await createUser(server);
    plain = await createUser(server);
    ({ guildId } = await seedGuildRows(server.db, owner.id, [plain.id]));
    const seeded = await seedUsers(server.db, guildId, MEMBERS - 2);
    bannedIds = await seedUsers(server.db, guildId, BANS, { as: 'bans', moderatorId: owner.id });
    memberIds = [owner.id, plain.id, ...seeded].sort();
    roleId = await createRole(server.db, guildId, P.KICK_MEMBERS, 1, 'helpers');
    // Role holders on the first, a middle and the last page.
    for (const id of [memberIds[5], memberIds[1500], memberIds[MEMBERS - 1]] as string[]) {
      await assignRole(server.db, guildId, id, roleId);
    }
  }, 120_000);

  async function walk(path: string, user: TestUser, limit?: number) {
    const pages: string[][] = [];
    const items: any[] = [];
    let after: string | undefined;
    for (let i = 0; i < 20; i++) {
      const q = new URLSearchParams();
      if (limit !== undefined) q.set('limit', String(limit));
      if (after) q.set('after', after);
      const page = await ok(api(server, 'GET', `${path}${q.size ? `?${q}` : ''}`, { user }));
      pages.push(page.map((x: any) => x.user.id));
      items.push(...page);
      if (page.length < (limit ?? 1000)) break;
      after = page.at(-1).user.id;
    }
    return { pages, items };
  }

  it('returns all 2,500 members over pages of 1,000, each once, in user id order, with their roles', async () => {
    const { pages, items } = await walk(`/api/guilds/${guildId}/members`, plain);
    expect(pages.map((p) => p.length)).toEqual([1000, 1000, 500]);
    const ids = items.map((m) => m.user.id);
    expect(ids).toEqual(memberIds);
    const holders = items.filter((m) => m.roles.includes(roleId)).map((m) => m.user.id);
    expect(holders).toEqual([memberIds[5], memberIds[1500], memberIds[MEMBERS - 1]]);
    // Any page size up to 1,000 walks the same list.
    const small = await walk(`/api/guilds/${guildId}/members`, plain, 777);
    expect(small.pages.map((p) => p.length)).toEqual([777, 777, 777, 169]);
    expect(small.items.map((m) => m.user.id)).toEqual(memberIds);
    // A cursor that is no member (e.g. someone who left) still pages from its place.
    const gone = memberIds[1234] as string;
    await server.db('guild_members').where({ guild_id: guildId, user_id: gone }).delete();
    const fromGone = await ok(
      api(server, 'GET', `/api/guilds/${guildId}/members?after=${gone}&limit=3`, { user: plain }),
    );
    expect(fromGone.map((m: any) => m.user.id)).toEqual(memberIds.slice(1235, 1238));
    await server.db('guild_members').insert({ guild_id: guildId, user_id: gone, joined_at: Date.now() });
  });

  it('pages the ban list the same way (BAN_MEMBERS only)', async () => {
    const { pages, items } = await walk(`/api/guilds/${guildId}/bans`, owner);
    expect(pages.map((p) => p.length)).toEqual([1000, 100]);
    expect(items.map((b) => b.user.id)).toEqual([...bannedIds].sort());
    const last = await ok(
      api(server, 'GET', `/api/guilds/${guildId}/bans?after=${[...bannedIds].sort()[BANS - 1]}`, { user: owner }),
    );
    expect(last).toEqual([]);
    const forbidden = await api(server, 'GET', `/api/guilds/${guildId}/bans?limit=5`, { user: plain });
    expect(forbidden.status).toBe(403);
  });

  it('refuses bad cursors and limits with VALIDATION_FAILED; outsiders get 404', async () => {
    for (const query of [
      'limit=0',
      'limit=1001',
      'limit=-1',
      'limit=1.5',
      'limit=0x10',
      'limit=1e3',
      'limit=',
      'limit=10&limit=20',
      'after=not-an-id',
      'after=1',
    ]) {
      for (const list of ['members', 'bans']) {
        const res = await api(server, 'GET', `/api/guilds/${guildId}/${list}?${query}`, { user: owner });
        expect(res.status, `${list}?${query}`).toBe(400);
        expect(res.body.error.code).toBe('VALIDATION_FAILED');
      }
    }
    const outsider = await createUser(server);
    const res = await api(server, 'GET', `/api/guilds/${guildId}/members?limit=10`, { user: outsider });
    expect(res.status).toBe(404);
  });
});
