/**
 * Client state as signals, fed by the gateway and the REST API: guilds with their channels, roles and
 * members, presence, typing, voice states, unread counts and the connection state. Every update makes
 * a new object for what changed (signals compare by identity); message logs live in messages.ts.
 */
import { computed, signal } from '@preact/signals';
import { api } from '../lib/api';
import { GatewayClient } from '../lib/gateway';
import { guildPermissions, has, type PermissionName } from '../lib/permissions';
import { currentUser, onSignOut, signOutLocally } from '../lib/session';
import type { Channel, GatewayEvent, Guild, Member, Ready, Role, User, VoiceState } from '../lib/types';
import { applyMegolmRotation, type Dm, dmCreated, removeDm, setDms, upsertDm } from './dm';
import { applyToDevice } from './e2ee';
import { applyMessageEvent, reconcileLoadedLogs, resetLogs, retryFailedSends } from './messages';
import { applyVoiceEvent, leaveVoice, onGatewayReady, setVoiceSignaller } from './voice';

export interface GuildView {
  guild: Guild;
  channels: Channel[];
  roles: Role[];
  /** Loaded when the guild is first opened; kept up to date by member events. */
  members: Member[] | null;
  membersCount: number;
}

export const guilds = signal<Record<string, GuildView>>({});
export const presence = signal<Record<string, string>>({});
export const voiceStates = signal<VoiceState[]>([]);
/** channel → user → typing until (ms). */
export const typing = signal<Record<string, Record<string, number>>>({});
export const unread = signal<Record<string, number>>({});
export const activeChannelId = signal<string | null>(null);
export const readyOnce = signal(false);

export const guildList = computed(() =>
  Object.values(guilds.value).sort((a, b) => a.guild.created_at.localeCompare(b.guild.created_at)),
);

const byPosition = <T extends { position: number; id: string }>(list: T[]) =>
  [...list].sort((a, b) => a.position - b.position || a.id.localeCompare(b.id));
const rolesByPosition = (list: Role[]) => [...list].sort((a, b) => b.position - a.position || a.id.localeCompare(b.id));

export const gateway = new GatewayClient({
  onReady: (ready, reconnected) => applyReady(ready, reconnected),
  onEvent: (ev) => applyEvent(ev),
  onRevoked: () => signOutLocally('This session was signed out (from another device, or the password changed).'),
});
export const connection = gateway.state;
setVoiceSignaller(gateway);

onSignOut(() => {
  void leaveVoice();
  gateway.stop();
  guilds.value = {};
  presence.value = {};
  voiceStates.value = [];
  typing.value = {};
  unread.value = {};
  readyOnce.value = false;
  resetLogs();
});

function applyReady(ready: Ready, reconnected: boolean): void {
  currentUser.value = ready.user;
  const next: Record<string, GuildView> = {};
  for (const g of ready.guilds) {
    const { channels, roles, members_count, ...guild } = g;
    next[g.id] = {
      guild,
      channels: byPosition(channels),
      roles: rolesByPosition(roles),
      members: guilds.value[g.id]?.members ?? null,
      membersCount: members_count,
    };
  }
  guilds.value = next;
  // The snapshot replaces what we knew (a reconnect may have missed offline updates); events follow.
  const seen: Record<string, string> = {};
  for (const g of ready.guilds) for (const p of g.presences ?? []) seen[p.user_id] = p.status;
  presence.value = seen;
  voiceStates.value = ready.voice_states ?? [];
  setDms((ready.dm_channels ?? []) as Dm[]);
  readyOnce.value = true;
  void gateway.send('presence', { status: 'online' }).catch(() => {});
  if (reconnected) {
    // Whatever resume could not replay (a restarted server, a long outage) comes from history.
    void reconcileLoadedLogs();
    for (const id of Object.keys(next)) if (next[id]!.members) void loadMembers(id);
  }
  void retryFailedSends();
  onGatewayReady(reconnected);
}

function patchGuild(guildId: string, fn: (g: GuildView) => GuildView | null): void {
  const g = guilds.value[guildId];
  if (!g) return;
  const copy = { ...guilds.value };
  const updated = fn(g);
  if (updated) copy[guildId] = updated;
  else delete copy[guildId];
  guilds.value = copy;
}

export function upsertChannel(c: Channel): void {
  if (!c.guild_id) return;
  patchGuild(c.guild_id, (g) => ({ ...g, channels: byPosition([...g.channels.filter((x) => x.id !== c.id), c]) }));
}

export function removeChannel(guildId: string | null, channelId: string): void {
  for (const id of guildId ? [guildId] : Object.keys(guilds.value))
    patchGuild(id, (g) => ({ ...g, channels: g.channels.filter((x) => x.id !== channelId) }));
}

export function upsertRole(r: Role): void {
  patchGuild(r.guild_id, (g) => ({ ...g, roles: rolesByPosition([...g.roles.filter((x) => x.id !== r.id), r]) }));
}

export function upsertMember(m: Member): void {
  patchGuild(m.guild_id, (g) => {
    const existed = g.members?.some((x) => x.user.id === m.user.id);
    return {
      ...g,
      members: g.members ? [...g.members.filter((x) => x.user.id !== m.user.id), m] : g.members,
      membersCount: g.membersCount + (existed || !g.members ? 0 : 1),
    };
  });
}

export function removeMember(guildId: string, userId: string): void {
  if (userId === currentUser.value?.id) {
    // We left, were kicked or banned: the guild is gone from our view.
    patchGuild(guildId, () => null);
    return;
  }
  patchGuild(guildId, (g) => ({
    ...g,
    members: g.members?.filter((x) => x.user.id !== userId) ?? null,
    membersCount: Math.max(0, g.membersCount - 1),
  }));
}

export function addGuild(guild: Guild & { channels?: Channel[]; roles?: Role[] }): void {
  const { channels, roles, ...g } = guild as Guild & { channels?: Channel[]; roles?: Role[] };
  guilds.value = {
    ...guilds.value,
    [g.id]: {
      guild: { id: g.id, name: g.name, owner_id: g.owner_id, created_at: g.created_at },
      channels: byPosition(channels ?? guilds.value[g.id]?.channels ?? []),
      roles: rolesByPosition(roles ?? guilds.value[g.id]?.roles ?? []),
      members: guilds.value[g.id]?.members ?? null,
      membersCount: guilds.value[g.id]?.membersCount ?? 1,
    },
  };
}

/** Loads a guild's channels and roles over REST (after joining one, or when our own roles change). */
export async function refreshGuild(guildId: string): Promise<void> {
  const [guild, channels, roles] = await Promise.all([
    api<Guild>('GET', `/api/guilds/${guildId}`),
    api<Channel[]>('GET', `/api/guilds/${guildId}/channels`),
    api<Role[]>('GET', `/api/guilds/${guildId}/roles`),
  ]);
  addGuild({ ...guild, channels, roles });
  await loadMembers(guildId);
}

/** Member pages the client loads at most (1,000 each): the member list shows up to 10,000. */
const MEMBER_PAGES_MAX = 10;

/** Loads a guild's members page by page (the server pages by user id, 1,000 at a time). */
export async function loadMembers(guildId: string): Promise<void> {
  const members: Member[] = [];
  let complete = false;
  for (let page = 0; page < MEMBER_PAGES_MAX; page++) {
    const after = members.at(-1)?.user.id;
    const batch = await api<Member[]>(
      'GET',
      `/api/guilds/${guildId}/members?limit=1000${after ? `&after=${encodeURIComponent(after)}` : ''}`,
    );
    members.push(...batch);
    if (batch.length < 1000) {
      complete = true;
      break;
    }
  }
  patchGuild(guildId, (g) => ({ ...g, members, membersCount: complete ? members.length : g.membersCount }));
}

/** Every user we know of (members of loaded guilds, and ourselves). */
export const users = computed(() => {
  const out: Record<string, User> = {};
  for (const g of Object.values(guilds.value)) for (const m of g.members ?? []) out[m.user.id] = m.user;
  const me = currentUser.value;
  if (me) out[me.id] = me;
  return out;
});

export const displayName = (userId: string): string => {
  const u = users.value[userId];
  return u ? u.display_name || u.username : `user ${userId.slice(-6)}`;
};

export function channelById(channelId: string): Channel | undefined {
  for (const g of Object.values(guilds.value)) {
    const c = g.channels.find((x) => x.id === channelId);
    if (c) return c;
  }
  return undefined;
}

/** Whether the signed-in user holds a permission in a guild (guild level: an upper bound). */
export function can(guildId: string | null | undefined, name: PermissionName): boolean {
  const me = currentUser.value;
  const g = guildId ? guilds.value[guildId] : undefined;
  if (!me || !g) return false;
  const member = g.members?.find((m) => m.user.id === me.id);
  return has(guildPermissions(g.guild, g.roles, me.id, member), name);
}

function setTyping(channelId: string, userId: string, until: number): void {
  const forChannel = { ...(typing.value[channelId] ?? {}) };
  if (until > 0) forChannel[userId] = until;
  else delete forChannel[userId];
  typing.value = { ...typing.value, [channelId]: forChannel };
}

function applyEvent(ev: GatewayEvent): void {
  const d = ev.data;
  switch (ev.type) {
    case 'message_new':
    case 'message_edit':
    case 'message_delete':
      applyMessageEvent(ev.type, d);
      if (ev.type === 'message_new') {
        setTyping(d.channel_id, d.author_id, 0);
        if (d.channel_id !== activeChannelId.value || document.hidden) {
          if (d.author_id !== currentUser.value?.id)
            unread.value = { ...unread.value, [d.channel_id]: (unread.value[d.channel_id] ?? 0) + 1 };
        }
      }
      return;
    case 'typing_start':
      if (d.user_id !== currentUser.value?.id) setTyping(d.channel_id, d.user_id, Date.now() + 10_000);
      return;
    case 'presence_update':
      presence.value = { ...presence.value, [d.user_id]: d.status };
      return;
    case 'member_join':
      if (d.user?.id === currentUser.value?.id) void refreshGuild(d.guild_id).catch(() => {});
      else upsertMember(d);
      return;
    case 'member_update':
      upsertMember(d);
      if (d.user?.id === currentUser.value?.id) void refreshGuild(d.guild_id).catch(() => {});
      return;
    case 'member_leave':
      removeMember(d.guild_id, d.user_id);
      return;
    case 'role_create':
    case 'role_update':
      upsertRole(d);
      return;
    case 'role_delete':
      patchGuild(d.guild_id, (g) => ({
        ...g,
        roles: g.roles.filter((r) => r.id !== d.id),
        members: g.members?.map((m) => ({ ...m, roles: m.roles.filter((r) => r !== d.id) })) ?? null,
      }));
      return;
    case 'channel_create':
    case 'channel_update':
      if ((d?.type === 'dm' || d?.type === 'group_dm') && Array.isArray(d.recipient_ids)) {
        if (ev.type === 'channel_create') dmCreated(d as Dm);
        else upsertDm(d as Dm);
      } else upsertChannel(d);
      return;
    case 'channel_delete':
      if (d?.type === 'dm' || d?.type === 'group_dm') removeDm(d.id);
      removeChannel(d.guild_id ?? null, d.id);
      return;
    case 'guild_update':
      patchGuild(d.id, (g) => ({ ...g, guild: { ...g.guild, ...d } }));
      return;
    case 'guild_delete':
      patchGuild(d.id, () => null);
      return;
    case 'voice_user_joined':
    case 'voice_state_update':
      if (d?.user_id && d?.channel_id)
        voiceStates.value = [...voiceStates.value.filter((v) => v.user_id !== d.user_id), d as VoiceState];
      applyVoiceEvent(ev);
      return;
    case 'voice_user_left':
      if (d?.user_id)
        voiceStates.value = voiceStates.value.filter(
          (v) => !(v.user_id === d.user_id && v.channel_id === d.channel_id),
        );
      applyVoiceEvent(ev);
      return;
    case 'voice_new_producer':
    case 'voice_producer_closed':
      applyVoiceEvent(ev);
      return;
    case 'to_device':
      applyToDevice(d);
      return;
    case 'megolm_session_rotation':
      if (typeof d?.channel_id === 'string') applyMegolmRotation(d.channel_id);
      return;
    case 'session_revoked':
      signOutLocally('This session was signed out (from another device, or the password changed).');
      return;
    default:
      // Events for later parts (DMs, voice signalling) and ones this view does not show.
      return;
  }
}

// Typing indicators fade on their own.
setInterval(() => {
  const now = Date.now();
  let changed = false;
  const next: Record<string, Record<string, number>> = {};
  for (const [ch, m] of Object.entries(typing.value)) {
    const kept = Object.fromEntries(Object.entries(m).filter(([, until]) => until > now));
    if (Object.keys(kept).length !== Object.keys(m).length) changed = true;
    next[ch] = kept;
  }
  if (changed) typing.value = next;
}, 1_000);
