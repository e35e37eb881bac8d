/**
 * End-to-end encrypted direct messages (issue 15 item 1). A DM message's `content` is an envelope of
 * Olm ciphertexts, one per recipient device (docs/e2ee.md "Message format in the web client"):
 *
 *   {"v":1,"alg":"olm","sender_device":"<device id>","ciphertexts":{"<user id>":{"<device id>":{"type":0|1,"body":"…"}}}}
 *
 * Each ciphertext seals `{type:"dm", channel_id, body}` plus the sender/recipient user and device
 * (checked against the message's author and our own device). An Olm message opens once, so the
 * plaintext of every message this device has read or written is kept in its sealed store
 * (`dm:<message id>`): a reload reads history from there. A message with no ciphertext for this
 * device (sent before it existed, or not to it) shows a notice, never the envelope.
 */
import { signal } from '@preact/signals';
import type { OlmDevice, OlmMessages } from '../e2ee/device';
import { api } from '../lib/api';
import { currentUser, onSignOut } from '../lib/session';
import type { Channel, Message } from '../lib/types';
import { device, ensureDevice, onToDevice } from './e2ee';
import { logOf } from './messages';

export type Dm = Channel & { recipient_ids: string[] };

export const dms = signal<Dm[]>([]);
export const dmsLoaded = signal(false);
/** message id → plaintext, or a notice when it cannot be read. */
export const dmTexts = signal<Record<string, { text: string } | { notice: string }>>({});

export const NOT_FOR_THIS_DEVICE =
  'This message was sent before this device existed (or not to it): it cannot be read here.';
export const UNREADABLE = 'This message could not be decrypted on this device.';

const MAX_CONTENT = 4000;
const UNLOCK_REASON = 'Direct messages are end-to-end encrypted: unlock this device’s keys to read and send them.';

export function setDms(list: Dm[]): void {
  dms.value = [...list].sort((a, b) => b.created_at.localeCompare(a.created_at));
  dmsLoaded.value = true;
}

export function upsertDm(d: Dm): void {
  setDms([d, ...dms.value.filter((x) => x.id !== d.id)]);
}

/**
 * A DM's `channel_create`: the server sends every participant the creator's view of `recipient_ids`
 * (which names us and not the creator), so the list is fetched again, where it is per viewer.
 */
export function dmCreated(d: Dm): void {
  const me = currentUser.value?.id;
  if (!dms.value.some((x) => x.id === d.id)) upsertDm({ ...d, recipient_ids: d.recipient_ids.filter((u) => u !== me) });
  void loadDms().catch(() => {});
}

export function removeDm(id: string): void {
  setDms(dms.value.filter((x) => x.id !== id));
}

export async function loadDms(): Promise<void> {
  setDms(await api<Dm[]>('GET', '/api/dm'));
}

export async function openDm(recipientIds: string[]): Promise<Dm> {
  const d = await api<Dm>('POST', '/api/dm', { body: { recipient_ids: recipientIds } });
  upsertDm(d);
  return d;
}

export async function leaveDm(id: string): Promise<void> {
  await api('POST', `/api/dm/${id}/leave`);
  removeDm(id);
}

export const unlockDm = () => ensureDevice(UNLOCK_REASON);

function setText(id: string, v: { text: string } | { notice: string }): void {
  dmTexts.value = { ...dmTexts.value, [id]: v };
}

interface Envelope {
  v: 1;
  alg: 'olm';
  sender_device: string;
  ciphertexts: Record<string, Record<string, { type: number; body: string }>>;
}

interface MegolmEnvelope {
  v: 1;
  alg: 'megolm';
  sender_device: string;
  sender_key: string;
  session_id: string;
  body: string;
}

function parseEnvelope(content: string): Envelope | MegolmEnvelope | null {
  try {
    const e = JSON.parse(content);
    if (e?.v !== 1 || typeof e.sender_device !== 'string') return null;
    if (e.alg === 'olm' && e.ciphertexts && typeof e.ciphertexts === 'object') return e as Envelope;
    if (e.alg === 'megolm' && typeof e.session_id === 'string' && typeof e.body === 'string')
      return e as MegolmEnvelope;
    return null;
  } catch {
    return null;
  }
}

/** Decrypts an envelope with what this device holds; null when it cannot (group DMs only: Olm opens once). */
async function openMegolm(dev: OlmDevice, channelId: string, authorId: string, env: MegolmEnvelope) {
  const out = await dev.megolmDecrypt(channelId, env.session_id, env.body);
  const p = out?.payload;
  if (
    !out ||
    out.sender_user !== authorId ||
    out.sender_device !== env.sender_device ||
    p?.type !== 'dm' ||
    p.channel_id !== channelId ||
    typeof p.body !== 'string'
  )
    return null;
  return p.body;
}

/** Decrypts (or reads from the sealed cache) one DM message into dmTexts. */
export async function readDmMessage(dev: OlmDevice, m: Message): Promise<void> {
  if (dmTexts.value[m.id] && 'text' in dmTexts.value[m.id]!) return;
  if (m.deleted_at) return setText(m.id, { notice: 'Message deleted.' });
  const key = `dm:${m.id}`;
  // Our own messages from this device: written to the store when sent.
  const own = await dev.getSealed<{ text: string }>(key);
  if (own && typeof own.text === 'string') return setText(m.id, { text: own.text });
  const env = m.encrypted ? parseEnvelope(m.content) : null;
  if (!env) return setText(m.id, { notice: UNREADABLE });
  if (env.alg === 'megolm') {
    const text = await openMegolm(dev, m.channel_id, m.author_id, env);
    return setText(m.id, text === null ? { notice: NOT_FOR_THIS_DEVICE } : { text });
  }
  const mine = env.ciphertexts[dev.userId]?.[dev.deviceId];
  if (!mine) return setText(m.id, { notice: NOT_FOR_THIS_DEVICE });
  const out = await dev.openOnce(
    `dmrx:${m.id}`,
    { userId: m.author_id, deviceId: env.sender_device },
    { type: mine.type, ciphertext: mine.body },
  );
  const p = out?.payload;
  if (p?.type !== 'dm' || p.channel_id !== m.channel_id || typeof p.body !== 'string')
    return setText(m.id, { notice: UNREADABLE });
  setText(m.id, { text: p.body });
}

/** Reads a batch in order (Olm ratchets are easiest oldest first). */
export async function readDmMessages(list: Message[]): Promise<void> {
  const dev = device.value;
  if (!dev) return;
  for (const m of list) await readDmMessage(dev, m).catch(() => setText(m.id, { notice: UNREADABLE }));
}

/** The per-device Olm envelope of a 1:1 DM message (our own other devices included). */
async function olmEnvelope(dev: OlmDevice, fresh: Dm, me: string, text: string): Promise<string> {
  const sealed: OlmMessages = await dev.encryptForUsers([...fresh.recipient_ids, me], {
    type: 'dm',
    channel_id: fresh.id,
    body: text,
  });
  const ciphertexts: Envelope['ciphertexts'] = {};
  for (const [u, byDevice] of Object.entries(sealed)) {
    const out: Record<string, { type: number; body: string }> = {};
    for (const [d, m] of Object.entries(byDevice)) out[d] = { type: m.type, body: m.ciphertext };
    ciphertexts[u] = out;
  }
  if (!fresh.recipient_ids.some((u) => ciphertexts[u] && Object.keys(ciphertexts[u]!).length > 0))
    throw new Error('Nobody in this conversation has a device that can receive encrypted messages yet.');
  const envelope: Envelope = { v: 1, alg: 'olm', sender_device: dev.deviceId, ciphertexts };
  return JSON.stringify(envelope);
}

/** Encrypts `text` for every device of the DM's participants (and our own other devices) and posts it. */
export async function sendDm(dm: Dm, text: string): Promise<Message> {
  const dev = await unlockDm();
  const me = currentUser.value!.id;
  // The participants now (someone may have left since the list was loaded).
  const fresh = (await api<Dm[]>('GET', '/api/dm')).find((d) => d.id === dm.id);
  if (!fresh) throw new Error('You are no longer in this conversation.');
  upsertDm(fresh);
  let content: string;
  if (fresh.type === 'group_dm') {
    const sealed = await dev.megolmEncrypt(dm.id, fresh.recipient_ids, { type: 'dm', channel_id: dm.id, body: text });
    const envelope: MegolmEnvelope = { v: 1, alg: 'megolm', sender_device: dev.deviceId, ...sealed };
    content = JSON.stringify(envelope);
  } else content = await olmEnvelope(dev, fresh, me, text);
  if ([...content].length > MAX_CONTENT)
    throw new Error('This message is too long for everyone’s devices; shorten it.');
  const nonce = Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
  const msg = await api<Message>('POST', `/api/channels/${dm.id}/messages`, {
    body: { content, encrypted: true, nonce },
  });
  await dev.putSealed(`dm:${msg.id}`, { text });
  setText(msg.id, { text });
  return msg;
}

/** A group DM's session key from a participant's device, over Olm (the sender is the one Olm authenticated). */
onToDevice('megolm_key', async ({ senderUserId, senderDeviceId, payload }) => {
  const dev = device.value;
  const channelId = payload.channel_id;
  if (!dev || typeof channelId !== 'string' || typeof payload.session_id !== 'string') return;
  if (typeof payload.session_key !== 'string') return;
  // Only from someone in that conversation with us.
  const inConversation = () => dms.value.find((d) => d.id === channelId)?.recipient_ids.includes(senderUserId);
  if (!inConversation()) await loadDms().catch(() => {});
  if (!inConversation()) return;
  const sender = (await dev.devicesOf(senderUserId)).find((d) => d.device_id === senderDeviceId);
  if (!sender) return;
  await dev.addInboundMegolm(
    {
      channel_id: channelId,
      session_id: payload.session_id,
      sender_user: senderUserId,
      sender_device: senderDeviceId,
      sender_key: sender.identity_keys.curve25519,
    },
    payload.session_key,
  );
  // Messages that arrived before their key are read again.
  const waiting = logOf(channelId).value.items.filter(
    (m) => !m.local && !(dmTexts.value[m.id] && 'text' in dmTexts.value[m.id]!),
  );
  if (waiting.length) await readDmMessages(waiting);
});

/** `megolm_session_rotation`: someone left; our next message starts a session they never held. */
export function applyMegolmRotation(channelId: string): void {
  void device.value?.rotateMegolm(channelId);
}

/**
 * What this device can make of a DM message's content with the keys it holds, without storing
 * anything (a diagnostic, used by the tests to check that a leaver's keys do not open later
 * messages). Group DM envelopes only: an Olm message opens once.
 */
export async function tryDecrypt(channelId: string, authorId: string, content: string): Promise<string | null> {
  const dev = device.value;
  const env = parseEnvelope(content);
  if (!dev || env?.alg !== 'megolm') return null;
  return openMegolm(dev, channelId, authorId, env);
}
(globalThis as Record<string, unknown>).voicechatDm = { tryDecrypt };

onSignOut(() => {
  dms.value = [];
  dmsLoaded.value = false;
  dmTexts.value = {};
});
