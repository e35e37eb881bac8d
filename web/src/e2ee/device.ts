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

export interface InboundRecord {
  channel_id: string;
  session_id: string;
  sender_user: string;
  sender_device: string;
  sender_key: string;
}

const b64 = (u: Uint8Array) => btoa(String.fromCharCode(...u));
const unb64 = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

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

  // ---------------------------------------------------------------------------------------------
  // Megolm (group DMs): one outbound session per channel, its key handed to the participants' devices
  // over Olm; inbound sessions pickled in the sealed store (`mgin:<session id>`), and each of ours
  // backed up to the server's store sealed under a key only this device holds.

  async #backupKey(): Promise<CryptoKey> {
    let raw = await this.#store.get<number[]>('megolm_backup_key');
    if (!raw) {
      raw = Array.from(crypto.getRandomValues(new Uint8Array(32)));
      await this.#store.put('megolm_backup_key', raw);
    }
    return crypto.subtle.importKey('raw', Uint8Array.from(raw), 'AES-GCM', false, ['encrypt', 'decrypt']);
  }

  async #storeInbound(rec: InboundRecord, sessionKey: string): Promise<boolean> {
    const s = new this.#olm.InboundGroupSession();
    try {
      s.create(sessionKey);
      if (s.session_id() !== rec.session_id) return false;
      await this.#store.put(`mgin:${rec.session_id}`, { ...rec, pickle: s.pickle(this.#pickleKey) });
      return true;
    } catch {
      return false;
    } finally {
      s.free();
    }
  }

  /**
   * Encrypts for a group DM's current participants with this channel's outbound Megolm session. A new
   * session is started when there is none, when it was rotated, or when the participants differ from
   * those it was shared with; its key goes to their devices over Olm first.
   */
  megolmEncrypt(
    channelId: string,
    participants: string[],
    payload: Record<string, unknown>,
  ): Promise<{ session_id: string; sender_key: string; body: string }> {
    return this.#locked(async () => {
      const others = [...new Set(participants)].filter((u) => u !== this.userId).sort();
      const rec = await this.#store.get<{ pickle: string; shared: string[] }>(`mgout:${channelId}`);
      const out = new this.#olm.OutboundGroupSession();
      try {
        if (rec && rec.shared.join() === others.join()) out.unpickle(this.#pickleKey, rec.pickle);
        else {
          out.create();
          const sessionId = out.session_id();
          const sessionKey = out.session_key();
          const inbound: InboundRecord = {
            channel_id: channelId,
            session_id: sessionId,
            sender_user: this.userId,
            sender_device: this.deviceId,
            sender_key: this.identity.curve25519,
          };
          await this.#storeInbound(inbound, sessionKey);
          // The relay carries messages to other users' devices: our own other devices read this
          // channel's messages only from sessions they start themselves.
          const messages = await this.#encryptForUsers(others, {
            type: 'megolm_key',
            channel_id: channelId,
            session_id: sessionId,
            session_key: sessionKey,
          });
          if (Object.keys(messages).length > 0)
            await api('POST', '/api/keys/to-device', { body: { device_id: this.deviceId, messages } });
          // Backup: sealed for this device, so the server's copy reveals nothing.
          const iv = crypto.getRandomValues(new Uint8Array(12));
          const ct = await crypto.subtle.encrypt(
            { name: 'AES-GCM', iv, additionalData: new TextEncoder().encode(`megolm:${channelId}:${sessionId}`) },
            await this.#backupKey(),
            new TextEncoder().encode(JSON.stringify({ ...inbound, session_key: sessionKey })),
          );
          const data = new Uint8Array(12 + ct.byteLength);
          data.set(iv);
          data.set(new Uint8Array(ct), 12);
          await api('POST', `/api/channels/${channelId}/megolm-sessions`, {
            body: {
              session_id: sessionId,
              sender_key: this.identity.curve25519,
              session_data: `${this.deviceId}.${b64(data)}`,
            },
          }).catch(() => {});
        }
        const body = out.encrypt(JSON.stringify({ ...payload, sender: this.userId, sender_device: this.deviceId }));
        await this.#store.put(`mgout:${channelId}`, { pickle: out.pickle(this.#pickleKey), shared: others });
        return { session_id: out.session_id(), sender_key: this.identity.curve25519, body };
      } finally {
        out.free();
      }
    });
  }

  /** Drops the channel's outbound session: the next message starts a new one (megolm_session_rotation). */
  rotateMegolm(channelId: string): Promise<void> {
    return this.#locked(() => this.#store.delete(`mgout:${channelId}`));
  }

  /** A session key received over Olm (`megolm_key`); the sender is the Olm-authenticated one. */
  addInboundMegolm(rec: InboundRecord, sessionKey: string): Promise<boolean> {
    return this.#locked(async () => {
      if (await this.#store.get(`mgin:${rec.session_id}`)) return true;
      return this.#storeInbound(rec, sessionKey);
    });
  }

  /** Our own sessions of a channel from the server's backup (those this device sealed). */
  async #restoreBackups(channelId: string): Promise<void> {
    const list = await api<{ session_id: string; sender_user_id: string; session_data: string }[]>(
      'GET',
      `/api/channels/${channelId}/megolm-sessions`,
    ).catch(() => []);
    const key = await this.#backupKey();
    for (const b of list) {
      const [dev, data] = b.session_data.split('.');
      if (b.sender_user_id !== this.userId || dev !== this.deviceId || !data) continue;
      if (await this.#store.get(`mgin:${b.session_id}`)) continue;
      try {
        const bytes = unb64(data);
        const pt = await crypto.subtle.decrypt(
          {
            name: 'AES-GCM',
            iv: bytes.slice(0, 12),
            additionalData: new TextEncoder().encode(`megolm:${channelId}:${b.session_id}`),
          },
          key,
          bytes.slice(12),
        );
        const { session_key, ...rec } = JSON.parse(new TextDecoder().decode(pt));
        if (rec.channel_id === channelId && rec.session_id === b.session_id) await this.#storeInbound(rec, session_key);
      } catch {}
    }
  }

  /** Decrypts a group DM message; null without the session (never shared with this device) or on any mismatch. */
  megolmDecrypt(
    channelId: string,
    sessionId: string,
    body: string,
  ): Promise<{ payload: Record<string, unknown>; sender_user: string; sender_device: string } | null> {
    return this.#locked(async () => {
      let rec = await this.#store.get<InboundRecord & { pickle: string }>(`mgin:${sessionId}`);
      if (!rec) {
        await this.#restoreBackups(channelId);
        rec = await this.#store.get<InboundRecord & { pickle: string }>(`mgin:${sessionId}`);
      }
      if (!rec || rec.channel_id !== channelId) return null;
      const s = new this.#olm.InboundGroupSession();
      try {
        s.unpickle(this.#pickleKey, rec.pickle);
        const { plaintext } = s.decrypt(body);
        const payload = JSON.parse(plaintext);
        if (payload.sender !== rec.sender_user || payload.sender_device !== rec.sender_device) return null;
        return { payload, sender_user: rec.sender_user, sender_device: rec.sender_device };
      } catch {
        return null;
      } finally {
        s.free();
      }
    });
  }

  /** Session ids of the inbound Megolm sessions this device holds for a channel (for tests and diagnostics). */
  async megolmSessionIds(channelId: string): Promise<string[]> {
    const out: string[] = [];
    for (const name of await this.#store.keys()) {
      if (!name.startsWith('mgin:')) continue;
      const r = await this.#store.get<InboundRecord>(name);
      if (r?.channel_id === channelId) out.push(r.session_id);
    }
    return out;
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
