/**
 * Real libolm clients for E2EE tests (`@towns-protocol/olm`, libolm compiled to wasm): an account per
 * device that uploads its identity, one-time and fallback keys through the API (signed like DESIGN.md
 * says), plus small helpers around the DM, claim and to-device endpoints.
 */
import OlmInit, { type Account, type OlmImpl, type Session } from '@towns-protocol/olm';
import { canonicalJson } from '../../src/canonical-json.js';
import { api, type TestUser } from './factories.js';
import type { TestServer } from './server.js';

type OlmModule = OlmImpl;

let olm: Promise<OlmModule> | undefined;

/** libolm, initialised once per test file. */
export function loadOlm(): Promise<OlmModule> {
  olm ??= OlmInit.initAsync();
  return olm;
}

export interface IdentityKeys {
  curve25519: string;
  ed25519: string;
}

/** One device of a user: a libolm Account and what it last published. */
export class OlmDevice {
  readonly Olm: OlmModule;
  readonly account: Account;
  readonly user: TestUser;
  readonly deviceId: string;
  readonly identity: IdentityKeys;

  private constructor(Olm: OlmModule, user: TestUser, deviceId: string) {
    this.Olm = Olm;
    this.user = user;
    this.deviceId = deviceId;
    this.account = new Olm.Account();
    this.account.create();
    this.identity = JSON.parse(this.account.identity_keys());
  }

  static async create(user: TestUser, deviceId = `dev_${Math.random().toString(36).slice(2, 10)}`) {
    return new OlmDevice(await loadOlm(), user, deviceId);
  }

  /** A signed upload body with `n` fresh one-time keys and (optionally) a fresh fallback key. */
  uploadBody(n: number, opts: { fallback?: boolean; sign?: boolean } = {}): Record<string, unknown> {
    // libolm holds at most max_number_of_one_time_keys() unpublished keys and lists them newest
    // first; generate in batches and send them oldest first (the server counts later as newer).
    const generated: [string, string][] = [];
    for (let left = n; left > 0; ) {
      const batch = Math.min(left, Math.floor(this.account.max_number_of_one_time_keys() / 2));
      this.account.generate_one_time_keys(batch);
      generated.push(...Object.entries<string>(JSON.parse(this.account.one_time_keys()).curve25519));
      this.account.mark_keys_as_published();
      left -= batch;
    }
    const counter = (id: string) => Buffer.from(id, 'base64').readUIntBE(0, Buffer.from(id, 'base64').length);
    const otks = Object.fromEntries(generated.sort((x, y) => counter(x[0]) - counter(y[0])));
    let fallback: Record<string, string> | undefined;
    if (opts.fallback) {
      this.account.generate_fallback_key();
      fallback = JSON.parse(this.account.unpublished_fallback_key()).curve25519;
      this.account.mark_keys_as_published();
    }
    const body: Record<string, unknown> = {
      device_id: this.deviceId,
      identity_keys: this.identity,
      ...(n > 0 ? { one_time_keys: otks } : {}),
      ...(fallback ? { fallback_key: fallback } : {}),
    };
    if (opts.sign !== false) body.signature = this.account.sign(canonicalJson(body));
    return body;
  }

  async upload(server: TestServer, n: number, opts: { fallback?: boolean } = {}) {
    const res = await api(server, 'POST', '/api/keys/upload', { user: this.user, body: this.uploadBody(n, opts) });
    if (res.status !== 200) throw new Error(`upload failed: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body as { one_time_key_count: number };
  }

  /** An outbound Olm session to `peer` from a one-time key claimed through the API. */
  async outboundTo(server: TestServer, peerUser: TestUser, peerDeviceId: string): Promise<Session> {
    const claim = await api(server, 'POST', `/api/users/${peerUser.id}/keys/claim`, {
      user: this.user,
      body: { device_id: peerDeviceId },
    });
    if (claim.status !== 200) throw new Error(`claim failed: ${claim.status} ${JSON.stringify(claim.body)}`);
    const keys = await api(server, 'GET', `/api/users/${peerUser.id}/keys`, { user: this.user });
    const device = (keys.body as { device_id: string; identity_keys: IdentityKeys }[]).find(
      (d) => d.device_id === peerDeviceId,
    );
    if (!device) throw new Error('peer device not listed');
    const session = new this.Olm.Session();
    session.create_outbound(this.account, device.identity_keys.curve25519, claim.body.one_time_keys[peerDeviceId].key);
    return session;
  }

  /** Decrypts a to-device message from `senderCurve`, creating the inbound session on a pre-key message. */
  decryptFrom(senderCurve: string, type: number, ciphertext: string, sessions: Session[]): string {
    for (const s of sessions) {
      if (type === 0 && !s.matches_inbound_from(senderCurve, ciphertext)) continue;
      try {
        return s.decrypt(type, ciphertext);
      } catch {}
    }
    if (type !== 0) throw new Error('no session decrypts this message');
    const session = new this.Olm.Session();
    session.create_inbound_from(this.account, senderCurve, ciphertext);
    this.account.remove_one_time_keys(session);
    sessions.push(session);
    return session.decrypt(type, ciphertext);
  }

  free(): void {
    this.account.free();
  }
}

/** Sends to-device messages from `from`'s device. */
export function sendToDevice(
  server: TestServer,
  from: OlmDevice,
  messages: Record<string, Record<string, { type: number; ciphertext: string }>>,
) {
  return api(server, 'POST', '/api/keys/to-device', { user: from.user, body: { device_id: from.deviceId, messages } });
}

/** Opens a DM (1 recipient) or group DM through the API. */
export async function openDm(server: TestServer, user: TestUser, recipients: TestUser[]) {
  const res = await api(server, 'POST', '/api/dm', { user, body: { recipient_ids: recipients.map((r) => r.id) } });
  if (res.status !== 201 && res.status !== 200) throw new Error(`dm failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as { id: string; type: string; recipient_ids: string[] };
}
