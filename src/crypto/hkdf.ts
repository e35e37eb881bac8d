/** HKDF-SHA256 derivations (per-channel Megolm at-rest keys). */
import { hkdfSync } from 'node:crypto';

/** HKDF-SHA256(ikm = master, salt = none, info = channelId), 32 bytes (DESIGN.md §4). */
export function deriveChannelKey(master: Buffer, channelId: string): Buffer {
  return Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), Buffer.from(channelId, 'utf8'), 32));
}
