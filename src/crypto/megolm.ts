/**
 * Megolm session data at rest (DESIGN.md §4): AES-256-GCM envelope `v1.<master key id>.…` under the
 * channel's key HKDF-SHA256(megolm master key, info = channel_id), with AAD
 * `megolm:<channel_id>:<session_id>`. The E2EE feature stores and serves through these two functions;
 * key rotation re-encrypts through them too.
 */

import { open, seal } from './aead.js';
import { deriveChannelKey } from './hkdf.js';
import type { Keyring } from './keyring.js';

const MAX_CACHED_CHANNELS = 10_000;
// Derived channel keys, per master key buffer (a keyring's buffers live as long as the keyring).
const derived = new WeakMap<Buffer, Map<string, Buffer>>();

function channelKey(master: Buffer, channelId: string): Buffer {
  let byChannel = derived.get(master);
  if (!byChannel) {
    byChannel = new Map();
    derived.set(master, byChannel);
  }
  let key = byChannel.get(channelId);
  if (!key) {
    if (byChannel.size >= MAX_CACHED_CHANNELS) byChannel.clear();
    key = deriveChannelKey(master, channelId);
    byChannel.set(channelId, key);
  }
  return key;
}

export const megolmAad = (channelId: string, sessionId: string): string => `megolm:${channelId}:${sessionId}`;

/** Seals session data under the active megolm key (or `keyId`, for rotation). */
export function sealMegolmSessionData(
  keyring: Keyring,
  channelId: string,
  sessionId: string,
  data: string | Buffer,
  keyId = keyring.active('megolm').id,
): string {
  const master = keyring.key('megolm', keyId);
  if (!master) throw new Error(`no megolm key ${keyId}`);
  return seal(channelKey(master, channelId), keyId, data, megolmAad(channelId, sessionId));
}

/** Opens session data under whichever megolm key its envelope names; DecryptError otherwise. */
export function openMegolmSessionData(
  keyring: Keyring,
  channelId: string,
  sessionId: string,
  envelope: string,
): Buffer {
  return open(
    (id) => {
      const master = keyring.key('megolm', id);
      return master && channelKey(master, channelId);
    },
    envelope,
    megolmAad(channelId, sessionId),
  );
}
