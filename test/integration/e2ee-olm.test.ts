/**
 * Real libolm clients holding encrypted conversations through the server (issue 10 "Done when"):
 * two clients over Olm, three over Megolm with the session key shared through Olm-encrypted
 * to-device messages, rotation when one leaves, and an offline device catching up from its queue.
 * The server only ever sees ciphertext.
 */
import type { InboundGroupSession, OutboundGroupSession, Session } from '@towns-protocol/olm';
import { afterAll, describe, expect, it } from 'vitest';
import { api, createUser, type TestUser } from '../support/factories.js';
import { ok, seedGuildRows } from '../support/guilds.js';
import { OlmDevice, openDm, sendToDevice } from '../support/olm.js';
import { useTestServer } from '../support/server.js';
import { GatewayClient } from '../support/ws.js';

const server = useTestServer({ VOICECHAT_RATE_LIMIT_SCALE: '20' });
const sockets: GatewayClient[] = [];
afterAll(() => {
  for (const s of sockets) s.close();
});

async function connect(user: TestUser) {
  const { client } = await GatewayClient.ready(server.wsUrl, user.accessToken);
  sockets.push(client);
  return client;
}

async function users(n: number) {
  const list = await Promise.all(Array.from({ length: n }, () => createUser(server)));
  await seedGuildRows(
    server.db,
    (list[0] as TestUser).id,
    list.slice(1).map((u) => u.id),
  );
  return list;
}

const nonce = () => Math.random().toString(36).slice(2);

/** An Olm-encrypted DM body (the client-defined envelope DESIGN.md §6 describes). */
const olmEnvelope = (from: OlmDevice, m: { type: number; body: string }) =>
  JSON.stringify({ algorithm: 'olm', sender_key: from.identity.curve25519, type: m.type, body: m.body });

describe('Olm 1:1', () => {
  it('A claims B’s one-time key, sends an encrypted DM; B decrypts it from the gateway; the row is ciphertext', async () => {
    const [a, b] = (await users(2)) as [TestUser, TestUser];
    const devA = await OlmDevice.create(a);
    const devB = await OlmDevice.create(b);
    await devA.upload(server, 10, { fallback: true });
    await devB.upload(server, 10, { fallback: true });
    const bWs = await connect(b);
    const dm = await openDm(server, a, [b]);
    await bWs.event('channel_create', (d) => d.id === dm.id);

    const outbound = await devA.outboundTo(server, b, devB.deviceId);
    const plaintext = 'meet me at the old oak, 7pm — bring the 🗝️';
    const sent = await ok(
      api(server, 'POST', `/api/channels/${dm.id}/messages`, {
        user: a,
        body: { content: olmEnvelope(devA, outbound.encrypt(plaintext)), encrypted: true, nonce: nonce() },
      }),
      201,
    );
    const frame = await bWs.event('message_new', (d) => d.id === sent.id);
    const envelope = JSON.parse(frame.data.content);
    expect(envelope.type).toBe(0); // a pre-key message: B builds the session from it
    const inbound: Session[] = [];
    expect(devB.decryptFrom(envelope.sender_key, envelope.type, envelope.body, inbound)).toBe(plaintext);
    // B answers on the same session; A decrypts.
    const reply = inbound[0]?.encrypt('see you there') as { type: number; body: string };
    const back = await ok(
      api(server, 'POST', `/api/channels/${dm.id}/messages`, {
        user: b,
        body: { content: olmEnvelope(devB, reply), encrypted: true, nonce: nonce() },
      }),
      201,
    );
    const got = JSON.parse(
      (await ok(api(server, 'GET', `/api/channels/${dm.id}/messages`, { user: a }))).find(
        (m: { id: string }) => m.id === back.id,
      ).content,
    );
    expect(outbound.decrypt(got.type, got.body)).toBe('see you there');
    // The database holds only the envelope: no plaintext anywhere in the rows.
    const rows = await server.db('messages').where({ channel_id: dm.id });
    expect(rows).toHaveLength(2);
    for (const r of rows) {
      expect(Boolean(r.encrypted)).toBe(true);
      expect(r.content).not.toContain('old oak');
      expect(r.content).not.toContain('see you there');
    }
    expect(server.logs.join('\n')).not.toContain('old oak');
  });
});

describe('Megolm group', () => {
  it('three clients share a Megolm session over Olm to-device; after C leaves, C cannot read the new session', async () => {
    const [a, b, c] = (await users(3)) as [TestUser, TestUser, TestUser];
    const devs = await Promise.all([a, b, c].map((u) => OlmDevice.create(u)));
    const [devA, devB, devC] = devs as [OlmDevice, OlmDevice, OlmDevice];
    for (const d of devs) await d.upload(server, 5, { fallback: true });
    const [aWs, bWs, cWs] = (await Promise.all([a, b, c].map(connect))) as [
      GatewayClient,
      GatewayClient,
      GatewayClient,
    ];
    const group = await openDm(server, a, [b, c]);
    expect(group.type).toBe('group_dm');
    await bWs.event('channel_create', (d) => d.id === group.id);
    await cWs.event('channel_create', (d) => d.id === group.id);

    const Olm = devA.Olm;
    // A's Olm sessions to B and C (from claimed one-time keys).
    const toB = await devA.outboundTo(server, b, devB.deviceId);
    const toC = await devA.outboundTo(server, c, devC.deviceId);
    const inboundB: Session[] = [];
    const inboundC: Session[] = [];

    /** A shares a Megolm session key with the given devices through Olm-encrypted to-device messages. */
    async function share(outbound: OutboundGroupSession, targets: [TestUser, OlmDevice, Session][]) {
      const payload = JSON.stringify({
        type: 'm.room_key',
        room_id: group.id,
        session_id: outbound.session_id(),
        session_key: outbound.session_key(),
      });
      const messages: Record<string, Record<string, { type: number; ciphertext: string }>> = {};
      for (const [user, dev, session] of targets) {
        const m = session.encrypt(payload);
        messages[user.id] = { [dev.deviceId]: { type: m.type, ciphertext: m.body } };
      }
      expect((await sendToDevice(server, devA, messages)).status).toBe(200);
      return payload;
    }
    /** A device takes the room key from its live to-device event (each event once) and acks it. */
    const consumed = new Set<string>();
    async function receiveKey(
      ws: GatewayClient,
      user: TestUser,
      dev: OlmDevice,
      inbound: Session[],
      sessionId: string,
    ) {
      const frame = await ws.event('to_device', (d) => d.device_id === dev.deviceId && !consumed.has(d.id));
      consumed.add(frame.data.id);
      expect(frame.data).toMatchObject({ sender_user_id: a.id, sender_device_id: devA.deviceId });
      const key = JSON.parse(
        dev.decryptFrom(devA.identity.curve25519, frame.data.type, frame.data.ciphertext, inbound),
      );
      expect(key).toMatchObject({ room_id: group.id, session_id: sessionId });
      await ok(api(server, 'POST', '/api/keys/to-device/ack', { user, body: { ids: [frame.data.id] } }), 204);
      const igs: InboundGroupSession = new Olm.InboundGroupSession();
      igs.create(key.session_key);
      return igs;
    }

    const first: OutboundGroupSession = new Olm.OutboundGroupSession();
    first.create();
    // A keeps its session in the server's store (sealed at rest).
    await ok(
      api(server, 'POST', `/api/channels/${group.id}/megolm-sessions`, {
        user: a,
        body: {
          session_id: first.session_id(),
          sender_key: devA.identity.curve25519,
          session_data: first.session_key(),
        },
      }),
      201,
    );
    await share(first, [
      [b, devB, toB],
      [c, devC, toC],
    ]);
    const bSession = await receiveKey(bWs, b, devB, inboundB, first.session_id());
    const cSession = await receiveKey(cWs, c, devC, inboundC, first.session_id());

    const post = async (outbound: OutboundGroupSession, text: string) =>
      ok(
        api(server, 'POST', `/api/channels/${group.id}/messages`, {
          user: a,
          body: {
            content: JSON.stringify({
              algorithm: 'megolm',
              session_id: outbound.session_id(),
              body: outbound.encrypt(text),
            }),
            encrypted: true,
            nonce: nonce(),
          },
        }),
        201,
      );
    const m1 = await post(first, 'hello group');
    for (const [ws, session] of [
      [bWs, bSession],
      [cWs, cSession],
    ] as const) {
      const f = await ws.event('message_new', (d) => d.id === m1.id);
      expect(session.decrypt(JSON.parse(f.data.content).body).plaintext).toBe('hello group');
    }

    // C leaves: A and B are told to rotate; C is not.
    expect((await api(server, 'POST', `/api/dm/${group.id}/leave`, { user: c })).status).toBe(204);
    await aWs.event('megolm_session_rotation', (d) => d.channel_id === group.id);
    await bWs.event('megolm_session_rotation', (d) => d.channel_id === group.id);
    const stored = await ok(api(server, 'GET', `/api/channels/${group.id}/megolm-sessions`, { user: a }));
    expect(stored[0].expired_at).not.toBeNull();
    expect((await api(server, 'GET', `/api/channels/${group.id}/megolm-sessions`, { user: c })).status).toBe(404);

    const second: OutboundGroupSession = new Olm.OutboundGroupSession();
    second.create();
    expect(second.session_id()).not.toBe(first.session_id());
    await share(second, [[b, devB, toB]]);
    const bSecond = await receiveKey(bWs, b, devB, inboundB, second.session_id());
    const m2 = await post(second, 'after C left');
    const f2 = await bWs.event('message_new', (d) => d.id === m2.id);
    const body2 = JSON.parse(f2.data.content).body;
    expect(bSecond.decrypt(body2).plaintext).toBe('after C left');
    // Everything C holds fails on the new session's messages; C no longer receives them at all.
    expect(() => cSession.decrypt(body2)).toThrow();
    for (const s of inboundC) expect(() => s.decrypt(1, body2)).toThrow();
    cWs.send({ type: 'ping' });
    await cWs.event('pong');
    expect(cWs.events('message_new').map((f) => f.data.id)).not.toContain(m2.id);
    expect(cWs.events('megolm_session_rotation')).toEqual([]);
    expect((await api(server, 'GET', `/api/channels/${group.id}/messages`, { user: c })).status).toBe(404);
    const rows = await server.db('messages').where({ channel_id: group.id });
    for (const r of rows) expect(r.content).not.toMatch(/hello group|after C left/);
  });
});

describe('offline delivery', () => {
  it('B is offline while A sends; B connects later, pulls, decrypts, acks; a second pull is empty', async () => {
    const [a, b] = (await users(2)) as [TestUser, TestUser];
    const devA = await OlmDevice.create(a);
    const devB = await OlmDevice.create(b);
    await devA.upload(server, 5);
    await devB.upload(server, 5, { fallback: true });
    const session = await devA.outboundTo(server, b, devB.deviceId);
    const texts = ['one', 'two', 'three'];
    for (const t of texts) {
      const m = session.encrypt(t);
      const res = await sendToDevice(server, devA, {
        [b.id]: { [devB.deviceId]: { type: m.type, ciphertext: m.body } },
      });
      expect(res.status).toBe(200);
    }
    // B comes online: nothing is lost; the queue is pulled in order and decrypted.
    const bWs = await connect(b);
    const pulled = await ok(api(server, 'GET', `/api/keys/to-device?device_id=${devB.deviceId}`, { user: b }));
    expect(pulled).toHaveLength(3);
    const inbound: Session[] = [];
    expect(
      pulled.map((m: { type: number; ciphertext: string }) =>
        devB.decryptFrom(devA.identity.curve25519, m.type, m.ciphertext, inbound),
      ),
    ).toEqual(texts);
    // Unacked messages stay (at-least-once): a pull before the ack sees them again.
    expect(await ok(api(server, 'GET', `/api/keys/to-device?device_id=${devB.deviceId}`, { user: b }))).toHaveLength(3);
    await ok(
      api(server, 'POST', '/api/keys/to-device/ack', {
        user: b,
        body: { ids: pulled.map((m: { id: string }) => m.id) },
      }),
      204,
    );
    expect(await ok(api(server, 'GET', `/api/keys/to-device?device_id=${devB.deviceId}`, { user: b }))).toEqual([]);
    // Now live: the next message arrives on the open socket.
    const live = session.encrypt('four');
    await sendToDevice(server, devA, { [b.id]: { [devB.deviceId]: { type: live.type, ciphertext: live.body } } });
    const f = await bWs.event('to_device', (d) => d.device_id === devB.deviceId);
    expect(devB.decryptFrom(devA.identity.curve25519, f.data.type, f.data.ciphertext, inbound)).toBe('four');
  });
});
