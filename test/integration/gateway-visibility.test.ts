/**
 * The gateway's batched visibility queries (src/gateway/repo.ts) must agree with the one definition
 * of "may VIEW" (`visibleTo` in src/access/loaders.ts) on a randomised guild with roles, allow/deny
 * overrides on @everyone and on roles, an owner, an administrator and a DM.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { visibleTo } from '../../src/access/loaders.js';
import { P } from '../../src/access/permissions.js';
import { loadGuildVisibility, loadUserView } from '../../src/gateway/repo.js';
import { newId, nowMs } from '../../src/ids.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { assignRole, createRole, createTextChannel, seedGuildRows } from '../support/guilds.js';

describe('gateway visibility', () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    await database?.drop();
  });

  it('agrees with visibleTo for every member of a randomised guild', async () => {
    const { db } = database;
    let seed = 7;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const now = nowMs();
    const users: string[] = [];
    for (let i = 0; i < 12; i++) {
      const id = newId();
      await db('users').insert({
        id,
        username: `vis_${i}_${now % 1000}`,
        password_hash: 'x',
        created_at: now,
        updated_at: now,
      });
      users.push(id);
    }
    const [owner, ...members] = users as [string, ...string[]];
    const g = await seedGuildRows(db, owner, members);
    const roles = [
      await createRole(db, g.guildId, 0n, 1),
      await createRole(db, g.guildId, P.SEND_MESSAGES, 2),
      await createRole(db, g.guildId, P.ADMINISTRATOR, 3),
    ];
    const channels = [g.textChannelId, g.voiceChannelId, g.hiddenChannelId];
    for (let i = 0; i < 6; i++) channels.push(await createTextChannel(db, g.guildId, `c${i}`));
    for (const channel of channels.slice(3)) {
      for (const role of [g.everyoneRoleId, ...roles]) {
        const r = rnd();
        if (r < 0.4) continue;
        await db('channel_overrides').insert({
          channel_id: channel,
          role_id: role,
          allow: r < 0.7 ? P.VIEW_CHANNEL.toString() : '0',
          deny: r >= 0.7 ? P.VIEW_CHANNEL.toString() : '0',
        });
      }
    }
    for (const m of members) for (const role of roles) if (rnd() < 0.35) await assignRole(db, g.guildId, m, role);
    const dm = newId();
    await db('channels').insert({ id: dm, guild_id: null, type: 'dm', position: 0, created_at: now, updated_at: now });
    await db('dm_participants').insert([
      { channel_id: dm, user_id: members[0], joined_at: now },
      { channel_id: dm, user_id: members[1], joined_at: now, left_at: now },
    ]);

    const batch = await loadGuildVisibility(db, g.guildId, users);
    let hiddenSomewhere = false;
    for (const u of users) {
      const expected = await visibleTo(db, u);
      const view = await loadUserView(db, u);
      const viewChannels = [
        ...view.guilds.flatMap((x) => x.channels.map((c) => c.id)),
        ...view.dms.map((d) => d.channel.id),
      ];
      expect(viewChannels.sort()).toEqual([...expected.channelIds].sort());
      expect(view.guilds.map((x) => x.guild.id)).toEqual(expected.guildIds);
      const guildOnly = expected.channelIds.filter((c) => c !== dm);
      expect([...(batch?.visible.get(u) ?? [])].sort()).toEqual(guildOnly.sort());
      if (guildOnly.length < channels.length) hiddenSomewhere = true;
    }
    expect(hiddenSomewhere).toBe(true); // the fixture really exercises denial
    expect(await loadGuildVisibility(db, newId(), users)).toBeUndefined();
  });
});
