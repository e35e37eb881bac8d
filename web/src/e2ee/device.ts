/**
 * This browser's end-to-end encryption device: one libolm account per browser profile and user, its
 * Olm sessions, and the to-device channel over the server's relay (DESIGN.md §6). The account and
 * sessions are pickled (with a random pickle key) into the SecureStore, so they exist on disk only
 * sealed under the user's secret. Device keys are uploaded signed (ed25519 over the canonical JSON),
 * one-time keys are topped up whenever the server's count runs low.
 *
 * Trust is on first use: a peer's devices are what the server's directory lists. Olm authenticates
 * the sender's curve25519 key, and we only accept a message whose key the directory names for the
 * device the relay says it came from.
 */
import { api } from '../lib/api';
import { loadOlm, type OlmImpl } from '../lib/olm';
import { SecureStore } from '../lib/secure-store';

type Account = InstanceType<OlmImpl['Account']>;
type Session = InstanceType<OlmImpl['Session']>;

export interface DeviceKeys {
  user_id: string;
  device_id: string;
  identity_keys: { curve25519: string; ed25519: string };
  created_at?: string | null;
}

export interface ToDeviceEvent {
  id: string;
  device_id: string;
  sender_user_id: string;
  sender_device_id: string;
  type: number;
  ciphertext: string;
}

export interface DecryptedToDevice {
  senderUserId: string;
  senderDeviceId: string;
  payload: Record<string, unknown>;
}

export type OlmMessages = Record<string, Record<string, { type: number; ciphertext: string }>>;

const OTK_TARGET = 50;
const DEVICE_CACHE_MS = 30_000;

export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value ?? null);
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
}

export const storeName = (userId: string) => `voicechat-keys-${userId}`;

export class OlmDevice {
  readonly userId: string;
  readonly deviceId: string;
  readonly identity: { curve25519: string; ed25519: string };
  readonly #olm: OlmImpl;
  readonly #store: SecureStore;
  readonly #account: Account;
  readonly #pickleKeyBytes: Uint8Array;
  /** curve25519 key → sessions, most recently used first. */
  readonly #sessions = new Map<string, Session[]>();
  readonly #devices = new Map<string, { at: number; list: DeviceKeys[] }>();
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(
    userId: string,
    deviceId: string,
    olm: OlmImpl,
    store: SecureStore,
    account: Account,
    pickleKey: Uint8Array,
  ) {
    this.userId = userId;
    this.deviceId = deviceId;
    this.#olm = olm;
    this.#store = store;
    this.#account = account;
    this.#pickleKeyBytes = pickleKey;
    this.identity = JSON.parse(account.identity_keys());
  }

  /** Opens (or creates and registers) this browser's device for the user, unlocking its store with the secret. */
  static async open(userId: string, secret: string): Promise<OlmDevice> {
    const [olm, store] = await Promise.all([loadOlm(), SecureStore.unlock(storeName(userId), secret)]);
    let pickleKey = await store.get<number[]>('pickle_key');
    let deviceId = await store.get<string>('device_id');
    const pickled = await store.get<string>('account');
    const account = new olm.Account();
    let fresh = false;
    if (pickled && pickleKey && deviceId) {
      account.unpickle(Uint8Array.from(pickleKey), pickled);
    } else {
      account.create();
      pickleKey = Array.from(crypto.getRandomValues(new Uint8Array(32)));
      deviceId = `web_${Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, '0')).join('')}`;
      await store.put('pickle_key', pickleKey);
      await store.put('device_id', deviceId);
      fresh = true;
    }
    const device = new OlmDevice(userId, deviceId, olm, store, account, Uint8Array.from(pickleKey));
    for (const name of await store.keys()) {
      if (!name.startsWith('olm:')) continue;
      const list = (await store.get<string[]>(name)) ?? [];
      device.#sessions.set(
        name.slice(4),
        list.map((p) => {
          const s = new olm.Session();
          s.unpickle(device.#pickleKey, p);
          return s;
        }),
      );
    }
    if (fresh) await device.#saveAccount();
    await device.#locked(() => device.#topUpKeys(fresh));
    return device;
  }

  /** A fresh copy each time: libolm zeroes the key buffer it is given after (un)pickling. */
  get #pickleKey(): Uint8Array {
    return this.#pickleKeyBytes.slice();
  }

  /** Runs Olm work one at a time (sessions and the account are shared mutable state). */
  #locked<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => {});
    return run;
  }

  async #saveAccount(): Promise<void> {
    await this.#store.put('account', this.#account.pickle(this.#pickleKey));
  }

  async #saveSessions(curve: string): Promise<void> {
    const list = this.#sessions.get(curve) ?? [];
    await this.#store.put(
      `olm:${curve}`,
      list.map((s) => s.pickle(this.#pickleKey)),
    );
  }

  /** Uploads identity keys (always when new) and one-time keys when the server holds fewer than half. */
  async #topUpKeys(force: boolean): Promise<void> {
    let count = 0;
    if (!force) {
      try {
        count = (await api<{ one_time_key_count: number }>('GET', `/api/keys/count?device_id=${this.deviceId}`))
          .one_time_key_count;
      } catch (e: any) {
        if (e?.status !== 404) throw e;
        force = true; // the device was removed on the server (or never registered): register again
      }
    }
    if (!force && count >= OTK_TARGET / 2) return;
    this.#account.generate_one_time_keys(OTK_TARGET - count);
    const otks = JSON.parse(this.#account.one_time_keys()).curve25519 as Record<string, string>;
    if (!JSON.parse(this.#account.unpublished_fallback_key()).curve25519 || force)
      this.#account.generate_fallback_key();
    const fb = JSON.parse(this.#account.unpublished_fallback_key()).curve25519 as Record<string, string>;
    const body: Record<string, unknown> = {
      device_id: this.deviceId,
      identity_keys: this.identity,
      one_time_keys: otks,
      ...(Object.keys(fb).length === 1 ? { fallback_key: fb } : {}),
    };
    body.signature = this.#account.sign(canonicalJson(body));
    await api('POST', '/api/keys/upload', { body });
    this.#account.mark_keys_as_published();
    await this.#saveAccount();
  }

  /** A user's devices from the directory (cached briefly). */
  async devicesOf(userId: string, fresh = false): Promise<DeviceKeys[]> {
    const c = this.#devices.get(userId);
    if (c && !fresh && Date.now() - c.at < DEVICE_CACHE_MS) return c.list;
    const list = await api<DeviceKeys[]>('GET', `/api/users/${userId}/keys`);
    this.#devices.set(userId, { at: Date.now(), list });
    return list;
  }

  /** Our own devices (for the device list in settings). */
  ownDevices(): Promise<DeviceKeys[]> {
    return this.devicesOf(this.userId, true);
  }

  /**
   * Encrypts `payload` for every device of the given users (not this device) over Olm. Devices
   * without a session get one from a claimed one-time key. Returns user → device → Olm message.
   */
  encryptForUsers(userIds: string[], payload: Record<string, unknown>): Promise<OlmMessages> {
    return this.#locked(() => this.#encryptForUsers(userIds, payload));
  }

  async #encryptForUsers(userIds: string[], payload: Record<string, unknown>): Promise<OlmMessages> {
    const messages: OlmMessages = {};
    for (const userId of new Set(userIds)) {
      const devices = (await this.devicesOf(userId)).filter(
        (d) => !(d.user_id === this.userId && d.device_id === this.deviceId),
      );
      const missing = devices.filter((d) => !this.#sessions.get(d.identity_keys.curve25519)?.length);
      if (missing.length > 0) {
        const claimed = await api<{ one_time_keys: Record<string, { key: string }> }>(
          'POST',
          `/api/users/${userId}/keys/claim`,
          { body: {} },
        );
        for (const d of missing) {
          const otk = claimed.one_time_keys[d.device_id];
          if (!otk) continue;
          const s = new this.#olm.Session();
          s.create_outbound(this.#account, d.identity_keys.curve25519, otk.key);
          this.#sessions.set(d.identity_keys.curve25519, [s]);
        }
      }
      for (const d of devices) {
        const s = this.#sessions.get(d.identity_keys.curve25519)?.[0];
        if (!s) continue;
        const plain = JSON.stringify({
          ...payload,
          sender: this.userId,
          sender_device: this.deviceId,
          recipient: userId,
          recipient_device: d.device_id,
        });
        const m = s.encrypt(plain);
        messages[userId] ??= {};
        messages[userId][d.device_id] = { type: m.type, ciphertext: m.body };
        await this.#saveSessions(d.identity_keys.curve25519);
      }
    }
    return messages;
  }

  /** Encrypts `payload` for every device of the given users and sends it through the relay. */
  sendToUsers(userIds: string[], payload: Record<string, unknown>): Promise<number> {
    return this.#locked(async () => {
      const messages = await this.#encryptForUsers(userIds, payload);
      const n = Object.values(messages).reduce((k, m) => k + Object.keys(m).length, 0);
      if (n > 0) await api('POST', '/api/keys/to-device', { body: { device_id: this.deviceId, messages } });
      return n;
    });
  }

  /**
   * Opens an Olm message sent to this device outside the relay (a DM message's per-device
   * ciphertext). `cacheKey` names a sealed record that keeps the plaintext: an Olm message opens only
   * once, so a reload reads it from there. Null when it cannot be opened.
   */
  openOnce(
    cacheKey: string,
    from: { userId: string; deviceId: string },
    msg: { type: number; ciphertext: string },
  ): Promise<DecryptedToDevice | null> {
    return this.#locked(async () => {
      const cached = await this.#store.get<DecryptedToDevice>(cacheKey);
      if (cached) return cached;
      const out = await this.#decrypt({
        id: cacheKey,
        device_id: this.deviceId,
        sender_user_id: from.userId,
        sender_device_id: from.deviceId,
        type: msg.type,
        ciphertext: msg.ciphertext,
      }).catch(() => null);
      if (out) await this.#store.put(cacheKey, out);
      return out;
    });
  }

  /** A sealed record of this device's store (plaintext we already opened or wrote). */
  getSealed<T>(name: string): Promise<T | undefined> {
    return this.#store.get<T>(name);
  }

  putSealed(name: string, value: unknown): Promise<void> {
    return this.#store.put(name, value);
  }

  /** Decrypts one relayed message meant for this device (null when it is not ours or cannot be opened), then acks it. */
  receive(ev: ToDeviceEvent): Promise<DecryptedToDevice | null> {
    if (ev.device_id !== this.deviceId) return Promise.resolve(null);
    return this.#locked(async () => {
      let out: DecryptedToDevice | null = null;
      try {
        out = await this.#decrypt(ev);
      } finally {
        await api('POST', '/api/keys/to-device/ack', { body: { ids: [ev.id] } }).catch(() => {});
      }
      return out;
    });
  }

  async #decrypt(ev: ToDeviceEvent): Promise<DecryptedToDevice | null> {
    let sender = (await this.devicesOf(ev.sender_user_id)).find((d) => d.device_id === ev.sender_device_id);
    if (!sender)
      sender = (await this.devicesOf(ev.sender_user_id, true)).find((d) => d.device_id === ev.sender_device_id);
    if (!sender) return null;
    const curve = sender.identity_keys.curve25519;
    const list = this.#sessions.get(curve) ?? [];
    let plain: string | undefined;
    for (const s of list) {
      if (ev.type === 0 && !s.matches_inbound_from(curve, ev.ciphertext)) continue;
      try {
        plain = s.decrypt(ev.type, ev.ciphertext);
        this.#sessions.set(curve, [s, ...list.filter((x) => x !== s)]);
        break;
      } catch {}
    }
    if (plain === undefined && ev.type === 0) {
      const s = new this.#olm.Session();
      try {
        s.create_inbound_from(this.#account, curve, ev.ciphertext);
        plain = s.decrypt(ev.type, ev.ciphertext);
      } catch {
        s.free();
        return null;
      }
      this.#account.remove_one_time_keys(s);
      this.#sessions.set(curve, [s, ...list]);
      await this.#saveAccount();
      void this.#topUpKeys(false).catch(() => {});
    }
    if (plain === undefined) return null;
    await this.#saveSessions(curve);
    let payload: Record<string, unknown>;
    try {
      payload = JSON.parse(plain);
    } catch {
      return null;
    }
    // The relay's envelope and the sealed content must agree on who sent it to whom.
    if (
      payload.sender !== ev.sender_user_id ||
      payload.sender_device !== ev.sender_device_id ||
      payload.recipient !== this.userId ||
      payload.recipient_device !== this.deviceId
    )
      return null;
    return { senderUserId: ev.sender_user_id, senderDeviceId: ev.sender_device_id, payload };
  }

  /** Messages queued while this device was offline. */
  async pullQueued(): Promise<ToDeviceEvent[]> {
    return api<ToDeviceEvent[]>('GET', `/api/keys/to-device?device_id=${this.deviceId}`);
  }

  /** Removes one of our devices on the server (this one: its local store is wiped too). */
  async removeDevice(deviceId: string): Promise<void> {
    await api('DELETE', `/api/keys/devices/${encodeURIComponent(deviceId)}`);
    this.#devices.delete(this.userId);
    if (deviceId === this.deviceId) {
      this.#store.lock();
      await SecureStore.destroy(this.#store.name);
    }
  }

  close(): void {
    this.#store.lock();
  }
}
