/**
 * End-to-end encryption of voice frames, SFrame-style (RFC 9605 in spirit, not its wire format):
 * every encoded Opus frame leaving this browser is sealed with AES-256-GCM under the sender's current
 * key before mediasoup forwards it, and every frame arriving is opened with the key its header names.
 *
 * Frame on the wire: `[key id: 1 byte][counter: 6 bytes, big-endian][ciphertext][GCM tag: 16 bytes]`.
 * The 7-byte header is the AEAD's additional data, so neither the key id nor the counter can be
 * changed without the frame being dropped. The nonce is the key's 12-byte salt XOR the counter (never
 * reused: the counter only grows and a new key starts a new count). Key and salt come from the 32
 * random bytes a sender hands out (through Olm) by HKDF-SHA-256, as SFrame derives them.
 *
 * What cannot be opened is dropped, never played: unknown key id, failed authentication, a counter
 * already seen or older than the replay window, a frame too short to hold a header and tag. Opus then
 * conceals the gap as it would a lost packet. A sender without a key sends nothing at all.
 */

export const HEADER_BYTES = 7;
const TAG_BYTES = 16;
const MAX_COUNTER = 2 ** 48 - 1;
/** How far behind the newest counter a frame may arrive (reordering) before it counts as a replay. */
export const REPLAY_WINDOW = 128;
/** Old keys kept per sender for frames still in flight after a rotation. */
const KEYS_KEPT = 3;

const te = new TextEncoder();

export interface FrameKey {
  readonly keyId: number;
  readonly key: CryptoKey;
  readonly salt: Uint8Array;
}

/** 32 fresh random bytes: a sender key, to be sent to the room's devices through Olm. */
export function newKeyMaterial(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(32));
}

/** Derives the AES-GCM key and nonce salt from a sender's key material (non-extractable). */
export async function importFrameKey(keyId: number, material: Uint8Array): Promise<FrameKey> {
  if (!Number.isInteger(keyId) || keyId < 0 || keyId > 255) throw new RangeError('key id must be 0–255');
  if (material.length !== 32) throw new RangeError('key material must be 32 bytes');
  const base = await crypto.subtle.importKey('raw', material as BufferSource, 'HKDF', false, [
    'deriveKey',
    'deriveBits',
  ]);
  const hkdf = (info: string) => ({
    name: 'HKDF',
    hash: 'SHA-256',
    salt: te.encode('voicechat sframe v1'),
    info: te.encode(info),
  });
  const key = await crypto.subtle.deriveKey(hkdf('key'), base, { name: 'AES-GCM', length: 256 }, false, [
    'encrypt',
    'decrypt',
  ]);
  const salt = new Uint8Array(await crypto.subtle.deriveBits(hkdf('salt'), base, 96));
  return { keyId, key, salt };
}

function nonce(salt: Uint8Array, counter: number): Uint8Array {
  const iv = salt.slice();
  let c = counter;
  for (let i = 11; i >= 6; i--) {
    iv[i] = (iv[i] ?? 0) ^ (c & 0xff);
    c = Math.floor(c / 256);
  }
  return iv;
}

function writeHeader(keyId: number, counter: number): Uint8Array {
  const h = new Uint8Array(HEADER_BYTES);
  h[0] = keyId;
  let c = counter;
  for (let i = 6; i >= 1; i--) {
    h[i] = c & 0xff;
    c = Math.floor(c / 256);
  }
  return h;
}

function readCounter(frame: Uint8Array): number {
  let c = 0;
  for (let i = 1; i <= 6; i++) c = c * 256 + (frame[i] ?? 0);
  return c;
}

/** Seals this browser's outgoing frames with its current key. */
export class FrameEncryptor {
  #key: FrameKey | undefined;
  #counter = 0;
  /** Frames sealed and frames dropped because there was no key (yet). */
  readonly stats = { sealed: 0, droppedNoKey: 0 };

  get keyId(): number | undefined {
    return this.#key?.keyId;
  }

  /** Switches to a new key; its counter starts at zero. `undefined` stops sending. */
  setKey(key: FrameKey | undefined): void {
    this.#key = key;
    this.#counter = 0;
  }

  /** The sealed frame, or null when there is no key (the frame must then not be sent). */
  async encrypt(payload: Uint8Array): Promise<Uint8Array | null> {
    const k = this.#key;
    if (!k || this.#counter >= MAX_COUNTER) {
      this.stats.droppedNoKey++;
      return null;
    }
    const counter = this.#counter++;
    const header = writeHeader(k.keyId, counter);
    const sealed = new Uint8Array(
      await crypto.subtle.encrypt(
        { name: 'AES-GCM', iv: nonce(k.salt, counter) as BufferSource, additionalData: header as BufferSource },
        k.key,
        payload as BufferSource,
      ),
    );
    const out = new Uint8Array(HEADER_BYTES + sealed.length);
    out.set(header, 0);
    out.set(sealed, HEADER_BYTES);
    this.stats.sealed++;
    return out;
  }
}

interface ReceiveKey extends FrameKey {
  /** Highest counter accepted so far (-1 before the first). */
  top: number;
  /** Bit i set = counter (top - i) was accepted. */
  seen: boolean[];
}

export type DropReason = 'malformed' | 'unknownKey' | 'auth' | 'replay';

/** Opens one remote sender's frames with the keys it has handed out. */
export class FrameDecryptor {
  #keys = new Map<number, ReceiveKey>();
  readonly stats: Record<DropReason | 'opened', number> = {
    opened: 0,
    malformed: 0,
    unknownKey: 0,
    auth: 0,
    replay: 0,
  };

  /** Adds a key of this sender (the newest is kept with a few older ones for frames in flight). */
  addKey(key: FrameKey): void {
    this.#keys.delete(key.keyId);
    this.#keys.set(key.keyId, { ...key, top: -1, seen: new Array(REPLAY_WINDOW).fill(false) });
    while (this.#keys.size > KEYS_KEPT) {
      const oldest = this.#keys.keys().next().value as number;
      this.#keys.delete(oldest);
    }
  }

  /** Forgets every key (e.g. the sender left): nothing of theirs can be opened any more. */
  clear(): void {
    this.#keys.clear();
  }

  get keyIds(): number[] {
    return [...this.#keys.keys()];
  }

  /** The opened payload, or null when the frame must be dropped. */
  async decrypt(frame: Uint8Array): Promise<Uint8Array | null> {
    if (frame.length < HEADER_BYTES + TAG_BYTES) return this.#drop('malformed');
    const k = this.#keys.get(frame[0] ?? -1);
    if (!k) return this.#drop('unknownKey');
    const counter = readCounter(frame);
    if (this.#alreadySeen(k, counter)) return this.#drop('replay');
    let opened: ArrayBuffer;
    try {
      opened = await crypto.subtle.decrypt(
        {
          name: 'AES-GCM',
          iv: nonce(k.salt, counter) as BufferSource,
          additionalData: frame.subarray(0, HEADER_BYTES) as BufferSource,
        },
        k.key,
        frame.subarray(HEADER_BYTES) as BufferSource,
      );
    } catch {
      return this.#drop('auth');
    }
    // Only an authentic frame moves the window (a forged counter cannot block real frames).
    if (this.#alreadySeen(k, counter)) return this.#drop('replay');
    this.#markSeen(k, counter);
    this.stats.opened++;
    return new Uint8Array(opened);
  }

  #drop(reason: DropReason): null {
    this.stats[reason]++;
    return null;
  }

  #alreadySeen(k: ReceiveKey, counter: number): boolean {
    if (counter > k.top) return false;
    const age = k.top - counter;
    return age >= REPLAY_WINDOW || k.seen[age] === true;
  }

  #markSeen(k: ReceiveKey, counter: number): void {
    if (counter > k.top) {
      const shift = k.top < 0 ? REPLAY_WINDOW : counter - k.top;
      if (shift >= REPLAY_WINDOW) k.seen.fill(false);
      else {
        k.seen.splice(REPLAY_WINDOW - shift, shift);
        k.seen.unshift(...new Array(shift).fill(false));
      }
      k.top = counter;
      k.seen[0] = true;
    } else {
      k.seen[k.top - counter] = true;
    }
  }
}

/** The part of an encoded audio frame the transform touches (RTCEncodedAudioFrame). */
interface EncodedFrame {
  data: ArrayBuffer;
}

/** A TransformStream that seals (or drops) every frame passing through. */
export function encryptingTransform(enc: FrameEncryptor): TransformStream<EncodedFrame, EncodedFrame> {
  return new TransformStream({
    async transform(frame, controller) {
      const out = await enc.encrypt(new Uint8Array(frame.data));
      if (!out) return;
      frame.data = out.buffer as ArrayBuffer;
      controller.enqueue(frame);
    },
  });
}

/** A TransformStream that opens (or drops) every frame passing through. */
export function decryptingTransform(dec: FrameDecryptor): TransformStream<EncodedFrame, EncodedFrame> {
  return new TransformStream({
    async transform(frame, controller) {
      const out = await dec.decrypt(new Uint8Array(frame.data));
      if (!out) return;
      frame.data = out.buffer as ArrayBuffer;
      controller.enqueue(frame);
    },
  });
}

type WithEncodedStreams = {
  createEncodedStreams(): { readable: ReadableStream<EncodedFrame>; writable: WritableStream<EncodedFrame> };
};

/**
 * Puts a transform between an RTP sender/receiver and the network, using Chromium's encoded
 * insertable streams (the peer connection must be created with `encodedInsertableStreams: true`).
 * Runs on the page's thread: a worker (RTCRtpScriptTransform) would need a Trusted Types policy for
 * its script URL, and the page has none (docs/decisions.md).
 */
export function attachTransform(
  senderOrReceiver: RTCRtpSender | RTCRtpReceiver,
  transform: TransformStream<EncodedFrame, EncodedFrame>,
): void {
  const s = senderOrReceiver as unknown as Partial<WithEncodedStreams>;
  if (typeof s.createEncodedStreams !== 'function')
    throw new Error('This browser cannot encrypt voice end to end (no encoded insertable streams).');
  const { readable, writable } = s.createEncodedStreams();
  void readable
    .pipeThrough(transform)
    .pipeTo(writable)
    .catch(() => {});
}

export function insertableStreamsSupported(): boolean {
  return typeof RTCRtpSender !== 'undefined' && 'createEncodedStreams' in RTCRtpSender.prototype;
}
