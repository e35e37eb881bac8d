/**
 * The device key directory with real libolm accounts (issue 10 items 2, 3, 7, 8): upload, count,
 * lookup, delete; well-formed keys only; signatures checked with Node's ed25519; identity keys never
 * silently replaced; ≤ 10 devices; ≤ 100 one-time keys (the newest); claims hand out each key once
 * under 50 concurrent claimers, then the fallback key; claim floods refused and audited.
 */
import { describe, expect, it } from 'vitest';
import { deleteStaleOneTimeKeys } from '../../src/jobs/e2ee-cleanup.js';
import { DAY_MS } from '../../src/jobs/job.js';
import { api, createUser, type TestUser } from '../support/factories.js';
import { ok, seedGuildRows } from '../support/guilds.js';
import { OlmDevice } from '../support/olm.js';
import { startTestServer, useTestServer } from '../support/server.js';

const server = useTestServer({ VOICECHAT_RATE_LIMIT_SCALE: '100' });

async function trio() {
  const [a, b, stranger] = (await Promise.all([1, 2, 3].map(() => createUser(server)))) as [
    TestUser,
    TestUser,
    TestUser,
  ];
  await seedGuildRows(server.db, a.id, [b.id]);
  return { a, b, stranger };
}

const upload = (user: TestUser, body: unknown) => api(server, 'POST', '/api/keys/upload', { user, body });
const devicesOf = async (userId: string) => server.db('devices').where({ user_id: userId });
const keysOfDevice = async (userId: string, deviceId: string) =>
  server
    .db('one_time_keys')
    .join('devices', 'devices.id', 'one_time_keys.device_id')
    .where({ 'devices.user_id': userId, 'devices.device_id': deviceId })
    .select('one_time_keys.key_id', 'one_time_keys.key', 'one_time_keys.created_at');

describe('device keys', () => {
  it('uploads libolm keys, counts them, and shows devices only to related users', async () => {
    const { a, b, stranger } = await trio();
    const dev = await OlmDevice.create(b);
    expect(await dev.upload(server, 5, { fallback: true })).toEqual({ one_time_key_count: 5 });
    expect(await ok(api(server, 'GET', `/api/keys/count?device_id=${dev.deviceId}`, { user: b }))).toEqual({
      one_time_key_count: 5,
    });
    const listed = await ok(api(server, 'GET', `/api/users/${b.id}/keys`, { user: a }));
    expect(listed).toEqual([
      expect.objectContaining({ user_id: b.id, device_id: dev.deviceId, identity_keys: dev.identity }),
    ]);
    const hidden = await api(server, 'GET', `/api/users/${b.id}/keys`, { user: stranger });
    expect(hidden.status).toBe(404);
    expect((await api(server, 'GET', `/api/users/not-an-id/keys`, { user: a })).status).toBe(404);
    // A re-upload of the same identity adds keys; the count grows.
    expect(await dev.upload(server, 3)).toEqual({ one_time_key_count: 8 });
    const added = await server.db('audit_log').where({ action: 'e2ee.device_add', user_id: b.id });
    expect(added).toHaveLength(1);
    dev.free();
  });

  it('refuses malformed keys, a bad signature, a replaced identity and an 11th device; nothing stored', async () => {
    const { a } = await trio();
    const dev = await OlmDevice.create(a);
    const good = dev.uploadBody(2, { fallback: true, sign: false });
    const id = good.identity_keys as { curve25519: string; ed25519: string };
    const bad: [string, Record<string, unknown>][] = [
      ['padded base64', { ...good, identity_keys: { ...id, curve25519: `${id.curve25519}=` } }],
      ['31 bytes', { ...good, identity_keys: { ...id, ed25519: Buffer.alloc(31, 7).toString('base64') } }],
      ['33 bytes', { ...good, identity_keys: { ...id, ed25519: Buffer.alloc(33, 7).toString('base64') } }],
      ['not base64', { ...good, identity_keys: { ...id, curve25519: '!'.repeat(43) } }],
      ['base64url', { ...good, identity_keys: { ...id, curve25519: `${'_'.repeat(42)}A` } }],
      ['missing ed25519', { ...good, identity_keys: { curve25519: id.curve25519 } }],
      ['bad one-time key', { ...good, one_time_keys: { AAAAAQ: 'short' } }],
      ['two fallback keys', { ...good, fallback_key: { a: id.curve25519, b: id.curve25519 } }],
      ['bad device id', { ...good, device_id: 'has space' }],
      ['long device id', { ...good, device_id: 'x'.repeat(65) }],
      ['unknown field', { ...good, extra: 1 }],
      ['signature not base64', { ...good, signature: 'nope' }],
      ['SQL in a key id', { ...good, one_time_keys: { "' OR 1=1 --": id.curve25519 } }],
    ];
    for (const [what, body] of bad) {
      const res = await upload(a, body);
      expect(res.status, what).toBe(400);
      expect(res.body.error.code, what).toBe('VALIDATION_FAILED');
    }
    // A signature by this device over other content, and one by another device over this content.
    const signedBody = dev.uploadBody(1, { fallback: false });
    const tampered = { ...signedBody, one_time_keys: { AAAAAQ: id.curve25519 } };
    const other = await OlmDevice.create(a);
    const forged = { ...good, signature: other.account.sign('{}') };
    for (const [what, body] of [
      ['tampered', tampered],
      ['forged', forged],
    ] as const) {
      const res = await upload(a, body);
      expect(res.status, what).toBe(400);
      expect(res.body.error.details[0].path, what).toBe('signature');
    }
    expect(await devicesOf(a.id)).toEqual([]);
    // A valid signed upload works; then the same device id with other identity keys is 409.
    await ok(upload(a, signedBody));
    const replaced = await upload(a, { ...other.uploadBody(1, { sign: false }), device_id: dev.deviceId });
    expect(replaced.status).toBe(409);
    expect((await devicesOf(a.id))[0]).toMatchObject({ curve25519: id.curve25519, ed25519: id.ed25519 });
    // Ten devices in all, then the 11th is refused.
    for (let i = 0; i < 9; i++) await (await OlmDevice.create(a)).upload(server, 1);
    const eleventh = await OlmDevice.create(a);
    const res = await upload(a, eleventh.uploadBody(1));
    expect(res.status).toBe(409);
    expect(await devicesOf(a.id)).toHaveLength(10);
    expect(await keysOfDevice(a.id, eleventh.deviceId)).toEqual([]);
  });

  it("someone else's device id is 404 everywhere; deleting one's own removes keys and queue, audited", async () => {
    const { a, b } = await trio();
    const devA = await OlmDevice.create(a);
    const devB = await OlmDevice.create(b);
    await devA.upload(server, 3, { fallback: true });
    await devB.upload(server, 3, { fallback: true });
    expect((await api(server, 'GET', `/api/keys/count?device_id=${devB.deviceId}`, { user: a })).status).toBe(404);
    expect((await api(server, 'DELETE', `/api/keys/devices/${devB.deviceId}`, { user: a })).status).toBe(404);
    expect((await api(server, 'GET', `/api/keys/to-device?device_id=${devB.deviceId}`, { user: a })).status).toBe(404);
    const spoofed = await api(server, 'POST', '/api/keys/to-device', {
      user: a,
      body: { device_id: devB.deviceId, messages: { [b.id]: { [devB.deviceId]: { type: 0, ciphertext: 'x' } } } },
    });
    expect(spoofed.status).toBe(404);
    expect(await server.db('to_device_messages').where({ recipient_user_id: b.id })).toEqual([]);
    expect(await keysOfDevice(b.id, devB.deviceId)).toHaveLength(3);
    // B's own delete: its keys and queued messages go.
    await ok(
      api(server, 'POST', '/api/keys/to-device', {
        user: a,
        body: { device_id: devA.deviceId, messages: { [b.id]: { [devB.deviceId]: { type: 0, ciphertext: 'x' } } } },
      }),
    );
    expect(await server.db('to_device_messages').where({ recipient_user_id: b.id })).toHaveLength(1);
    expect((await api(server, 'DELETE', `/api/keys/devices/${devB.deviceId}`, { user: b })).status).toBe(204);
    expect(await devicesOf(b.id)).toEqual([]);
    expect(await server.db('one_time_keys').whereNotIn('device_id', server.db('devices').select('id'))).toEqual([]);
    expect(await server.db('to_device_messages').where({ recipient_user_id: b.id })).toEqual([]);
    const audit = await server.db('audit_log').where({ action: 'e2ee.device_remove', user_id: b.id });
    expect(audit).toHaveLength(1);
    expect(audit[0].resource_id).toBe(devB.deviceId);
    expect((await api(server, 'DELETE', `/api/keys/devices/${devB.deviceId}`, { user: b })).status).toBe(404);
  });

  it('150 one-time keys → the newest 100 kept; the 30-day cleanup removes old ones', async () => {
    const { a } = await trio();
    const dev = await OlmDevice.create(a);
    const body = dev.uploadBody(150);
    const uploadedIds = Object.keys(body.one_time_keys as object);
    expect(uploadedIds).toHaveLength(150);
    expect(await ok(upload(a, body))).toEqual({ one_time_key_count: 100 });
    const kept = (await keysOfDevice(a.id, dev.deviceId)).map((k: { key_id: string }) => k.key_id).sort();
    expect(kept).toEqual(uploadedIds.slice(50).sort());
    // A later upload of 10 drops the 10 oldest of the first batch.
    const next = dev.uploadBody(10);
    expect(await ok(upload(a, next))).toEqual({ one_time_key_count: 100 });
    const after = (await keysOfDevice(a.id, dev.deviceId)).map((k: { key_id: string }) => k.key_id);
    for (const k of Object.keys(next.one_time_keys as object)) expect(after).toContain(k);
    for (const k of uploadedIds.slice(50, 60)) expect(after).not.toContain(k);
    // Age half of them past 30 days: the cleanup job removes exactly those.
    const device = (await devicesOf(a.id))[0];
    const old = (await server.db('one_time_keys').where({ device_id: device.id }).orderBy('id').limit(40)).map(
      (r: { id: string }) => r.id,
    );
    await server
      .db('one_time_keys')
      .whereIn('id', old)
      .update({ created_at: Date.now() - 31 * DAY_MS });
    const removed = await deleteStaleOneTimeKeys(server.db);
    expect(removed).toBeGreaterThanOrEqual(40);
    expect(await keysOfDevice(a.id, dev.deviceId)).toHaveLength(60);
    expect(await ok(api(server, 'GET', `/api/keys/count?device_id=${dev.deviceId}`, { user: a }))).toEqual({
      one_time_key_count: 60,
    });
  });
});

describe('claims', () => {
  it('50 concurrent claims on 20 keys: 20 distinct keys, then the fallback, never a duplicate', async () => {
    const { b } = await trio();
    const claimers = await Promise.all(Array.from({ length: 10 }, () => createUser(server)));
    await seedGuildRows(
      server.db,
      b.id,
      claimers.map((c) => c.id),
    );
    const dev = await OlmDevice.create(b);
    const body = dev.uploadBody(20, { fallback: true });
    await ok(upload(b, body));
    const fallback = body.fallback_key as Record<string, string>;
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        api(server, 'POST', `/api/users/${b.id}/keys/claim`, { user: claimers[i % 10] as TestUser, body: {} }),
      ),
    );
    for (const r of results) expect(r.status, JSON.stringify(r.body)).toBe(200);
    const handed = results.map((r) => r.body.one_time_keys[dev.deviceId]);
    const real = handed.filter((k) => !k.fallback);
    expect(real).toHaveLength(20);
    expect(new Set(real.map((k) => k.key_id)).size).toBe(20);
    expect(new Set(real.map((k) => k.key))).toEqual(new Set(Object.values(body.one_time_keys as object)));
    const fb = handed.filter((k) => k.fallback);
    expect(fb).toHaveLength(30);
    for (const k of fb) expect({ [k.key_id]: k.key }).toEqual(fallback);
    expect(await keysOfDevice(b.id, dev.deviceId)).toEqual([]);
    // A real Olm session can be built from a claimed key (libolm accepts it).
    const peer = await OlmDevice.create(claimers[0] as TestUser);
    const session = new peer.Olm.Session();
    session.create_outbound(peer.account, dev.identity.curve25519, real[0].key);
    expect(session.encrypt('hi').type).toBe(0);
  });

  it('a device with nothing left is absent; one device can be named; unrelated users are 404', async () => {
    const { a, b, stranger } = await trio();
    const d1 = await OlmDevice.create(b);
    const d2 = await OlmDevice.create(b);
    await d1.upload(server, 1);
    await d2.upload(server, 1, { fallback: true });
    const one = await ok(
      api(server, 'POST', `/api/users/${b.id}/keys/claim`, { user: a, body: { device_id: d2.deviceId } }),
    );
    expect(Object.keys(one.one_time_keys)).toEqual([d2.deviceId]);
    const all = await ok(api(server, 'POST', `/api/users/${b.id}/keys/claim`, { user: a, body: {} }));
    expect(all.one_time_keys[d1.deviceId].fallback).toBe(false);
    expect(all.one_time_keys[d2.deviceId].fallback).toBe(true);
    const empty = await ok(api(server, 'POST', `/api/users/${b.id}/keys/claim`, { user: a, body: {} }));
    expect(Object.keys(empty.one_time_keys)).toEqual([d2.deviceId]);
    const unknown = await api(server, 'POST', `/api/users/${b.id}/keys/claim`, {
      user: a,
      body: { device_id: 'nope' },
    });
    expect(unknown.status).toBe(404);
    const refused = await api(server, 'POST', `/api/users/${b.id}/keys/claim`, { user: stranger, body: {} });
    expect(refused.status).toBe(404);
  });
});

describe('claim flood', () => {
  it('is rate limited per caller and target, and the first refusal is audited once', async () => {
    const limited = await startTestServer();
    try {
      const [a, b] = await Promise.all([createUser(limited), createUser(limited)]);
      await seedGuildRows(limited.db, a.id, [b.id]);
      const dev = await OlmDevice.create(b);
      await ok(api(limited, 'POST', '/api/keys/upload', { user: b, body: dev.uploadBody(30, { fallback: true }) }));
      const statuses: number[] = [];
      for (let i = 0; i < 14; i++) {
        const r = await api(limited, 'POST', `/api/users/${b.id}/keys/claim`, { user: a, body: {} });
        statuses.push(r.status);
        if (r.status === 429) expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
      }
      expect(statuses.slice(0, 10)).toEqual(Array(10).fill(200));
      expect(statuses.slice(10)).toEqual(Array(4).fill(429));
      const left = await limited.db('one_time_keys').count({ n: '*' }).first();
      expect(Number(left?.n)).toBe(20); // refused claims took nothing
      const audit = await limited.db('audit_log').where({ action: 'e2ee.claim_refused', user_id: a.id });
      expect(audit).toHaveLength(1);
      expect(audit[0].resource_id).toBe(b.id);
    } finally {
      await limited.stop();
    }
  });
});
