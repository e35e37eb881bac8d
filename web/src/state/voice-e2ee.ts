/**
 * End-to-end encrypted voice keys. In a channel with `e2ee_voice`, this browser seals its Opus frames
 * under a sender key (lib/sframe.ts) that it alone chose, and hands that key only to the devices of
 * the people in the call, inside Olm to-device messages (`voice_key`). Whenever someone joins or
 * leaves, it picks a new key and sends it to those present then: a newcomer cannot decrypt what was
 * said before, someone who left cannot decrypt what is said after, and the server never has a key.
 * The new key is used only once it has been handed out, so nobody in the call drops more than the
 * frames in flight.
 */
import { signal } from '@preact/signals';
import { currentUser } from '../lib/session';
import { importFrameKey, newKeyMaterial } from '../lib/sframe';
import type { VoiceSession } from '../voice/session';
import { device, ensureDevice, onToDevice } from './e2ee';
import { voiceStates } from './store';
import { setVoiceE2eeHooks } from './voice';

/** Our current sender key id in the call (shown for the curious, and checked by tests). */
export const voiceKeyId = signal<number | null>(null);
/** How many times our key was replaced in this call. */
export const voiceKeyChanges = signal(0);

let session: VoiceSession | undefined;
let chain: Promise<unknown> = Promise.resolve();
let nextKeyId = Math.floor(Math.random() * 256);
/** Keys that arrived before our session was up: channel → user → [key id, material]. */
const early = new Map<string, Map<string, [number, Uint8Array][]>>();

const b64 = (u: Uint8Array) => btoa(String.fromCharCode(...u));
const unb64 = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

function othersInCall(channelId: string): string[] {
  const me = currentUser.value?.id;
  return voiceStates.value.filter((v) => v.channel_id === channelId && v.user_id !== me).map((v) => v.user_id);
}

function rotate(): void {
  const s = session;
  if (!s?.e2ee) return;
  chain = chain.then(async () => {
    if (session !== s || s.closed) return;
    const dev = device.value;
    if (!dev) return;
    const keyId = nextKeyId;
    nextKeyId = (nextKeyId + 1) & 0xff;
    const material = newKeyMaterial();
    const key = await importFrameKey(keyId, material);
    const to = othersInCall(s.channelId);
    if (to.length > 0)
      await dev
        .sendToUsers(to, { type: 'voice_key', channel_id: s.channelId, key_id: keyId, key: b64(material) })
        .catch(() => {});
    material.fill(0);
    if (session !== s || s.closed) return;
    s.encryptor.setKey(key);
    voiceKeyId.value = keyId;
    voiceKeyChanges.value++;
  });
}

async function addKey(s: VoiceSession, userId: string, keyId: number, material: Uint8Array): Promise<void> {
  s.decryptorFor(userId).addKey(await importFrameKey(keyId, material));
}

onToDevice('voice_key', async ({ senderUserId, payload }) => {
  const channelId = String(payload.channel_id ?? '');
  const keyId = Number(payload.key_id);
  if (!Number.isInteger(keyId) || keyId < 0 || keyId > 255 || typeof payload.key !== 'string') return;
  const material = unb64(payload.key);
  if (material.length !== 32) return;
  const s = session;
  if (s && s.channelId === channelId) {
    // Only from someone in the call with us.
    if (!othersInCall(channelId).includes(senderUserId)) return;
    await addKey(s, senderUserId, keyId, material);
    return;
  }
  // Our join may still be under way: keep it for a moment.
  const byUser = early.get(channelId) ?? new Map<string, [number, Uint8Array][]>();
  byUser.set(senderUserId, [...(byUser.get(senderUserId) ?? []), [keyId, material] as [number, Uint8Array]].slice(-3));
  early.set(channelId, byUser);
  setTimeout(() => early.delete(channelId), 30_000);
});

setVoiceE2eeHooks({
  prepare: async () => {
    await ensureDevice('Encrypted voice needs this device’s encryption keys.');
  },
  session: (s) => {
    session = s?.e2ee ? s : undefined;
    voiceKeyId.value = null;
    voiceKeyChanges.value = 0;
    if (!session) return;
    const pending = early.get(session.channelId);
    early.delete(session.channelId);
    const cur = session;
    for (const [userId, keys] of pending ?? []) for (const [id, m] of keys) void addKey(cur, userId, id, m);
    rotate();
  },
  roomChange: () => rotate(),
});
