/** Channel and override rows → wire shapes (snake_case, ISO timestamps, bitfields as strings). */
import { toWire } from '../access/permissions.js';
import type { ChannelWire } from '../events/event-map.js';
import { iso } from '../ids.js';

export function presentChannel(c: {
  id: string;
  guild_id: string | null;
  type: string;
  name: string | null;
  topic?: string | null;
  position: number;
  user_limit?: number | null;
  e2ee_voice?: boolean | number | null;
  created_at: number;
}): ChannelWire {
  return {
    id: c.id,
    guild_id: c.guild_id,
    type: c.type,
    name: c.name,
    topic: c.topic ?? null,
    position: Number(c.position),
    user_limit: c.user_limit ?? null,
    e2ee_voice: Boolean(c.e2ee_voice),
    created_at: iso(c.created_at),
  };
}

export function presentOverride(o: {
  channel_id: string;
  role_id: string;
  allow: bigint | number | string;
  deny: bigint | number | string;
}) {
  return { channel_id: o.channel_id, role_id: o.role_id, allow: toWire(o.allow), deny: toWire(o.deny) };
}
