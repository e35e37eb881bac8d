/** Message and attachment rows → wire shapes. Deleted messages keep their row, scrubbed. */
import { iso } from '../ids.js';

export interface AttachmentRow {
  id: string;
  channel_id: string;
  message_id: string | null;
  filename: string;
  mime_type: string;
  size_bytes: number;
  created_at: number;
  [k: string]: unknown;
}

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

export function presentAttachment(a: AttachmentRow) {
  return {
    id: a.id,
    channel_id: a.channel_id,
    message_id: a.message_id,
    filename: a.filename,
    mime_type: a.mime_type,
    size_bytes: Number(a.size_bytes),
    url: `/api/attachments/${a.id}`,
    created_at: iso(a.created_at),
  };
}

export function presentMessage(m: MessageRow, attachments: AttachmentRow[] = []) {
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
