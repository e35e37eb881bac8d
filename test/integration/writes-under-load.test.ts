/**
 * Every valid write succeeds while messages are being posted (issue 8). Eight senders flood a channel
 * while guild renames, role and invite creation, profile edits and MFA enrol/disable cycles run in a
 * loop; no request on either side may answer 5xx, and every acknowledged write must be in the
 * database afterwards. On SQLite this is the contention between the group-committing message writer
 * (its own connection on a worker thread) and ordinary write transactions on the main connection.
 */
import { authenticator } from 'otplib';
import { describe, expect, it } from 'vitest';
import { register } from '../support/auth.js';
import { api } from '../support/factories.js';
import { joinGuild, ok } from '../support/guilds.js';
import { useTestServer } from '../support/server.js';

const RUN_MS = 10_000;
const SENDERS = 8;

describe('writes under message load', () => {
  const server = useTestServer({ VOICECHAT_RATE_LIMIT_SCALE: '100000' });

  it('answers every valid write without 5xx and keeps every acknowledged write', async () => {
    const owner = await register(server);
    const guild = await ok(api(server, 'POST', '/api/guilds', { user: owner, body: { name: 'load' } }), 201);
    const channelId = guild.channels.find((c: { type: string }) => c.type === 'text').id as string;
    const senders = await Promise.all(Array.from({ length: SENDERS }, () => register(server)));
    for (const s of senders) await joinGuild(server, owner, guild.id, s);

    const statuses = new Map<string, Map<number, number>>();
    const count = (kind: string, status: number) => {
      const m = statuses.get(kind) ?? new Map<number, number>();
      m.set(status, (m.get(status) ?? 0) + 1);
      statuses.set(kind, m);
    };
    const deadline = Date.now() + RUN_MS;
    const running = () => Date.now() < deadline;

    const messageIds: string[] = [];
    const flood = senders.map(async (s, i) => {
      let n = 0;
      while (running()) {
        const r = await api(server, 'POST', `/api/channels/${channelId}/messages`, {
          user: s,
          body: { content: `sender ${i} message ${n++}` },
        });
        count('message', r.status);
        if (r.status === 201) messageIds.push(r.body.id);
      }
    });

    let lastGuildName = guild.name as string;
    const renames = (async () => {
      let n = 0;
      while (running()) {
        const name = `renamed ${n++}`;
        const r = await api(server, 'PATCH', `/api/guilds/${guild.id}`, { user: owner, body: { name } });
        count('guild.rename', r.status);
        if (r.status === 200) lastGuildName = name;
      }
    })();

    const roleIds: string[] = [];
    const roles = (async () => {
      let n = 0;
      while (running() && roleIds.length < 240) {
        const r = await api(server, 'POST', `/api/guilds/${guild.id}/roles`, {
          user: owner,
          body: { name: `role ${n++}`, permissions: '0' },
        });
        count('role.create', r.status);
        if (r.status === 201) roleIds.push(r.body.id);
      }
    })();

    const inviteCodes: string[] = [];
    const invites = (async () => {
      while (running()) {
        const r = await api(server, 'POST', `/api/guilds/${guild.id}/invites`, { user: senders[0]!, body: {} });
        count('invite.create', r.status);
        if (r.status === 201) inviteCodes.push(r.body.code);
      }
    })();

    const profileUser = senders[1]!;
    let lastDisplayName: string | undefined;
    const profiles = (async () => {
      let n = 0;
      while (running()) {
        const display_name = `Name ${n++}`;
        const r = await api(server, 'PATCH', '/auth/me', { user: profileUser, body: { display_name } });
        count('profile.update', r.status);
        if (r.status === 200) lastDisplayName = display_name;
      }
    })();

    // MFA enrol → verify → disable (with a backup code), over and over: three write transactions each.
    const mfaUser = senders[2]!;
    let mfaEnabled = false;
    let mfaCycles = 0;
    const mfa = (async () => {
      while (running()) {
        const setup = await api(server, 'POST', '/auth/mfa/setup', {
          user: mfaUser,
          body: { password: mfaUser.password },
        });
        count('mfa.setup', setup.status);
        if (setup.status !== 200) continue;
        const verify = await api(server, 'POST', '/auth/mfa/verify', {
          user: mfaUser,
          body: { code: authenticator.generate(setup.body.secret) },
        });
        count('mfa.verify', verify.status);
        if (verify.status !== 200) continue;
        mfaEnabled = true;
        const disable = await api(server, 'POST', '/auth/mfa/disable', {
          user: mfaUser,
          body: { password: mfaUser.password, code: verify.body.backup_codes[0] },
        });
        count('mfa.disable', disable.status);
        if (disable.status === 204) {
          mfaEnabled = false;
          mfaCycles++;
        }
      }
    })();

    await Promise.all([...flood, renames, roles, invites, profiles, mfa]);

    const summary = Object.fromEntries([...statuses].map(([k, m]) => [k, Object.fromEntries(m)]));
    const failures = [...statuses].flatMap(([kind, m]) =>
      [...m].filter(([status]) => status >= 500).map(([status, n]) => `${kind}: ${n} × ${status}`),
    );
    expect(failures, JSON.stringify(summary)).toEqual([]);
    // Everything else was a success too (no 4xx from valid requests either).
    for (const [kind, m] of statuses) {
      expect([...m.keys()], `${kind}: ${JSON.stringify(summary)}`).toEqual([
        kind === 'message' || kind === 'role.create' || kind === 'invite.create'
          ? 201
          : kind === 'mfa.disable'
            ? 204
            : 200,
      ]);
    }
    // Both sides made real progress, so the contention actually happened.
    expect(messageIds.length).toBeGreaterThan(SENDERS * 20);
    expect(mfaCycles).toBeGreaterThan(0);

    const db = server.db;
    const storedMessages = await db('messages').whereIn('id', messageIds).count({ n: '*' });
    expect(Number(storedMessages[0]!.n)).toBe(messageIds.length);
    const storedRoles = await db('roles').whereIn('id', roleIds).count({ n: '*' });
    expect(Number(storedRoles[0]!.n)).toBe(roleIds.length);
    const storedInvites = await db('invites').whereIn('code', inviteCodes).count({ n: '*' });
    expect(Number(storedInvites[0]!.n)).toBe(inviteCodes.length);
    expect((await db('guilds').where({ id: guild.id }).first()).name).toBe(lastGuildName);
    expect((await db('users').where({ id: profileUser.id }).first()).display_name).toBe(lastDisplayName);
    expect(Boolean((await db('users').where({ id: mfaUser.id }).first()).mfa_enabled)).toBe(mfaEnabled);
  }, 60_000);
});
