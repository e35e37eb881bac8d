/** Message rows → wire shape. Deleted messages keep their row, scrubbed. */
import type { MessageWire } from '../events/event-map.js';
import { iso } from '../ids.js';
import { type AttachmentRow, presentAttachment } from '../uploads/presenter.js';

export interface MessageRow {
  id: string;
  channel_id: string;
  author_id: string | null;
  content: string;
  encrypted: boolean | number;
  nonce: string | null;
  reply_to: string | null;
  created_at: number;
  edited_at: number | null;
  deleted_at: number | null;
}

export function presentMessage(m: MessageRow, attachments: AttachmentRow[] = []): MessageWire {
  return {
    id: m.id,
    channel_id: m.channel_id,
    author_id: m.author_id,
    content: m.content,
    encrypted: Boolean(m.encrypted),
    nonce: m.nonce,
    reply_to: m.reply_to,
    attachments: attachments.map(presentAttachment),
    created_at: iso(m.created_at),
    edited_at: iso(m.edited_at),
    deleted_at: iso(m.deleted_at),
  };
}
