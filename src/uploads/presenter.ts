/** Attachment rows → wire shape. */
import type { AttachmentWire } from '../events/event-map.js';
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

export function presentAttachment(a: AttachmentRow): AttachmentWire {
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
