/**
 * Every server → client event (DESIGN.md §7, §8) and the payload it carries: the one table the
 * Outbox (topic events) and gateway connections (direct events) are typed by, so an event cannot be
 * published with a misspelt name or a payload of the wrong shape. The wire shapes are plain types with
 * no server code behind them, so a client may import them too.
 *
 * A feature adds its events here, next to their payloads. (A module may also extend the table from
 * its own folder with `declare module '../events/event-map.js' { interface EventMap { … } }`.)
 */

export interface PublicUserWire {
  id: string;
  username: string;
  display_name: string | null;
  created_at: string | null;
}

export interface SelfWire extends PublicUserWire {
  email: string | null;
  is_admin: boolean;
  mfa_enabled: boolean;
}

export interface GuildWire {
  id: string;
  name: string;
  owner_id: string;
  created_at: string | null;
}

export interface ChannelWire {
  id: string;
  guild_id: string | null;
  type: string;
  name: string | null;
  topic: string | null;
  position: number;
  user_limit: number | null;
  /** Voice channels: clients must encrypt their media end to end (issue 15); false elsewhere. */
  e2ee_voice: boolean;
  created_at: string | null;
}

export interface RoleWire {
  id: string;
  guild_id: string;
  name: string;
  color: string | null;
  /** Permission bitfield as a decimal string. */
  permissions: string;
  position: number;
  is_everyone: boolean;
  created_at: string | null;
}

export interface MemberWire {
  guild_id: string;
  user: PublicUserWire;
  nickname: string | null;
  roles: string[];
  joined_at: string | null;
}

export interface AttachmentWire {
  id: string;
  channel_id: string;
  message_id: string | null;
  filename: string;
  mime_type: string;
  size_bytes: number;
  url: string;
  created_at: string | null;
}

export interface MessageWire {
  id: string;
  channel_id: string;
  author_id: string | null;
  content: string;
  encrypted: boolean;
  nonce: string | null;
  reply_to: string | null;
  attachments: AttachmentWire[];
  created_at: string | null;
  edited_at: string | null;
  deleted_at: string | null;
}

export interface VoiceStateWire {
  user_id: string;
  muted: boolean;
  deafened: boolean;
  server_muted: boolean;
}

/**
 * Why someone left voice: `left` (voice_leave), `moved` (joined another channel), `disconnected`
 * (their socket closed), `removed` (kicked, banned, permission lost, channel deleted), `worker-died`
 * (the media worker crashed: rejoin), `shutdown` (the server is stopping).
 */
export type VoiceLeaveReasonWire = 'left' | 'moved' | 'disconnected' | 'removed' | 'worker-died' | 'shutdown';

export interface ReadyWire {
  user: SelfWire;
  session_id: string;
  heartbeat_interval_ms: number;
  guilds: (GuildWire & { channels: ChannelWire[]; roles: RoleWire[]; members_count: number })[];
  dm_channels: (ChannelWire & { recipient_ids: string[] })[];
  voice_states: (VoiceStateWire & { channel_id: string })[];
}

type Empty = Record<string, never>;

export interface EventMap {
  // connection-level
  ready: ReadyWire;
  pong: Empty;
  resume_failed: { session_id: string };
  session_revoked: Empty;
  // messages and typing (topic `channel:<id>`)
  message_new: MessageWire;
  message_edit: MessageWire;
  message_delete: MessageWire;
  typing_start: { channel_id: string; guild_id: string | null; user_id: string; timestamp: string | null };
  // guild structure (topic `guild:<id>`; channel events on `channel:<id>`)
  presence_update: { guild_id: string; user_id: string; status: 'online' | 'idle' | 'dnd' | 'offline' };
  member_join: MemberWire;
  member_leave: { guild_id: string; user_id: string };
  member_update: MemberWire;
  role_create: RoleWire;
  role_update: RoleWire;
  role_delete: { guild_id: string; id: string };
  channel_create: ChannelWire;
  channel_update: ChannelWire;
  channel_delete: { id: string; guild_id: string | null };
  guild_update: GuildWire;
  guild_delete: { id: string };
  // end-to-end encryption (DESIGN.md §6)
  megolm_session_rotation: { channel_id: string };
  to_device: {
    id: string;
    device_id: string;
    sender_user_id: string;
    sender_device_id: string;
    type: number;
    ciphertext: string;
  };
  // voice (DESIGN.md §8), on the voice channel's topic; every payload also names its channel_id.
  voice_user_joined: VoiceStateWire & { channel_id: string };
  voice_user_left: { channel_id: string; user_id: string; reason: VoiceLeaveReasonWire };
  voice_state_update: VoiceStateWire & { channel_id: string };
  voice_new_producer: { channel_id: string; user_id: string; producer_id: string };
  voice_producer_closed: { channel_id: string; user_id: string; producer_id: string };
}

export type EventName = keyof EventMap;

/** A gateway topic: one user's connections, a guild's members, or a channel's viewers. */
export type Topic = `user:${string}` | `guild:${string}` | `channel:${string}`;
