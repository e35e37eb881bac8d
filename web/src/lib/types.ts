/** Wire shapes of the public HTTP API and gateway (DESIGN.md §6–§7, docs/api.md), as the client reads them. */

export interface User {
  id: string;
  username: string;
  display_name: string | null;
  created_at: string;
  email?: string | null;
  is_admin?: boolean;
  mfa_enabled?: boolean;
}

export interface TokenAnswer {
  user?: User;
  access_token: string;
  refresh_token: string;
  expires_in: number;
}

export interface Guild {
  id: string;
  name: string;
  owner_id: string;
  created_at: string;
}

export type ChannelType = 'text' | 'voice' | 'dm' | 'group_dm';

export interface Channel {
  id: string;
  guild_id: string | null;
  type: ChannelType;
  name: string | null;
  topic: string | null;
  position: number;
  user_limit: number | null;
  /** Voice channels: media is end-to-end encrypted (issue 15). */
  e2ee_voice?: boolean;
  created_at: string;
}

export interface Role {
  id: string;
  guild_id: string;
  name: string;
  color: string | null;
  permissions: string;
  position: number;
  is_everyone: boolean;
  created_at: string;
}

export interface Member {
  guild_id: string;
  user: User;
  nickname: string | null;
  roles: string[];
  joined_at: string;
}

export interface Invite {
  code: string;
  guild_id: string;
  creator_id: string;
  max_uses: number | null;
  uses: number;
  expires_at: string | null;
  created_at: string;
}

export interface Attachment {
  id: string;
  channel_id: string;
  message_id: string | null;
  filename: string;
  mime_type: string;
  size_bytes: number;
  url: string;
  created_at: string;
}

export interface Message {
  id: string;
  channel_id: string;
  author_id: string;
  content: string;
  encrypted: boolean;
  nonce: string | null;
  reply_to: string | null;
  attachments: Attachment[];
  created_at: string;
  edited_at: string | null;
  deleted_at: string | null;
}

export interface SessionInfo {
  id: string;
  ip_address?: string | null;
  user_agent?: string | null;
  created_at: string;
  last_used_at?: string | null;
  current?: boolean;
}

export interface ReadyGuild extends Guild {
  channels: Channel[];
  roles: Role[];
  members_count: number;
  /** Members shown online/idle/dnd when `ready` was sent (absent = offline); the first 1,000 per guild. */
  presences?: { user_id: string; status: string }[];
}

export interface VoiceState {
  channel_id: string;
  user_id: string;
  muted?: boolean;
  deafened?: boolean;
  server_muted?: boolean;
}

export interface Ready {
  user: User;
  session_id: string;
  heartbeat_interval_ms: number;
  guilds: ReadyGuild[];
  dm_channels: Channel[];
  voice_states: VoiceState[];
}

export interface GatewayEvent {
  type: string;
  seq?: number;
  data?: any;
  request_id?: string | null;
  ok?: boolean;
  error?: { code: string; message: string };
}
