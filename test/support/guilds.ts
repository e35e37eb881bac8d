/** Guild fixtures over HTTP: a guild with owner, admin, moderator, plain member, outsider and a banned user. */
import { afterAll, beforeAll, expect } from 'vitest';
import { P, toWire } from '../../src/guilds/permissions.js';
import { api, createUser, type TestUser } from './factories.js';
import { startTestServer, type TestServer } from './server.js';

export const MODERATOR_BITS =
  P.KICK_MEMBERS | P.BAN_MEMBERS | P.MANAGE_MESSAGES | P.MANAGE_ROLES | P.MANAGE_CHANNELS | P.VIEW_AUDIT_LOG;

export interface GuildFixture {
  guildId: string;
  everyoneRoleId: string;
  adminRoleId: string;
  modRoleId: string;
  lowRoleId: string;
  textChannelId: string;
  voiceChannelId: string;
  owner: TestUser;
  admin: TestUser;
  moderator: TestUser;
  member: TestUser;
  outsider: TestUser;
  banned: TestUser;
}

export async function ok(res: Promise<{ status: number; body: any }>, status = 200): Promise<any> {
  const r = await res;
  expect(r.status, JSON.stringify(r.body)).toBe(status);
  return r.body;
}

export async function joinGuild(
  server: TestServer,
  owner: Pick<TestUser, 'headers'>,
  guildId: string,
  user: Pick<TestUser, 'headers'>,
) {
  const invite = await ok(api(server, 'POST', `/api/guilds/${guildId}/invites`, { user: owner, body: {} }), 201);
  await ok(api(server, 'POST', `/api/invites/${invite.code}/join`, { user }));
}

export async function setupGuild(server: TestServer, name = 'Test guild'): Promise<GuildFixture> {
  const [owner, admin, moderator, member, outsider, banned] = await Promise.all(
    Array.from({ length: 6 }, () => createUser(server)),
  );
  const guild = await ok(api(server, 'POST', '/api/guilds', { user: owner!, body: { name } }), 201);
  const guildId = guild.id as string;
  for (const u of [admin, moderator, member, banned]) await joinGuild(server, owner!, guildId, u!);
  const role = async (n: string, bits: bigint, position: number) =>
    (
      await ok(
        api(server, 'POST', `/api/guilds/${guildId}/roles`, {
          user: owner!,
          body: { name: n, permissions: toWire(bits), position },
        }),
        201,
      )
    ).id as string;
  const adminRoleId = await role('admin', P.ADMINISTRATOR, 3);
  const modRoleId = await role('moderator', MODERATOR_BITS, 2);
  const lowRoleId = await role('low', 0n, 1);
  await ok(
    api(server, 'PUT', `/api/guilds/${guildId}/members/${admin!.id}/roles/${adminRoleId}`, { user: owner! }),
    204,
  );
  await ok(
    api(server, 'PUT', `/api/guilds/${guildId}/members/${moderator!.id}/roles/${modRoleId}`, { user: owner! }),
    204,
  );
  await ok(api(server, 'PUT', `/api/guilds/${guildId}/bans/${banned!.id}`, { user: owner!, body: {} }), 204);
  return {
    guildId,
    everyoneRoleId: guild.roles[0].id,
    adminRoleId,
    modRoleId,
    lowRoleId,
    textChannelId: guild.channels.find((c: any) => c.type === 'text').id,
    voiceChannelId: guild.channels.find((c: any) => c.type === 'voice').id,
    owner: owner!,
    admin: admin!,
    moderator: moderator!,
    member: member!,
    outsider: outsider!,
    banned: banned!,
  };
}

/**
 * Suite fixture: boots a server (allowances scaled up, limits still on) with the standard guild before
 * the suite and stops it afterwards. The returned object is filled in by the time tests run.
 */
export function useGuildServer(env: Record<string, string> = { VOICECHAT_RATE_LIMIT_SCALE: '1000' }) {
  const state = {} as { server: TestServer; fx: GuildFixture };
  beforeAll(async () => {
    state.server = await startTestServer({ env });
    state.fx = await setupGuild(state.server);
  });
  afterAll(async () => {
    await state.server?.stop();
  });
  return state;
}

/** A guild owned by `owner` with `members` joined by invite, and its `general` text channel. */
export async function guildWith(server: TestServer, owner: TestUser, name: string, members: TestUser[] = []) {
  const guild = await ok(api(server, 'POST', '/api/guilds', { user: owner, body: { name } }), 201);
  for (const m of members) await joinGuild(server, owner, guild.id, m);
  const channelId: string = guild.channels.find((c: { type: string }) => c.type === 'text').id;
  return { guild, guildId: guild.id as string, channelId };
}
