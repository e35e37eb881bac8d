/**
 * The to-device relay (issue 10 item 4): live delivery to the recipient's connections only, queued
 * until acked (at-least-once), only to related users and known devices (nothing half-written), the
 * per-device cap drops the oldest, expired messages are never served and the cleanup job removes them,
 * one request ≤ 256 KiB.
 */
import { describe, expect, it } from 'vitest';
import { TO_DEVICE_QUEUE_CAP } from '../../src/e2ee/to-device.js';
import { newId } from '../../src/ids.js';
import { deleteExpiredToDeviceMessages } from '../../src/jobs/e2ee-cleanup.js';
import { DAY_MS } from '../../src/jobs/job.js';
import { api, createUser, type TestUser } from '../support/factories.js';
import { ok, seedGuildRows } from '../support/guilds.js';
import { OlmDevice, sendToDevice } from '../support/olm.js';
import { useTestServer } from '../support/server.js';
import { GatewayClient } from '../support/ws.js';

const server = useTestServer({ VOICECHAT_RATE_LIMIT_SCALE: '20' });

async function setup() {
  const [a, b, stranger] = (await Promise.all([1, 2, 3].map(() => createUser(server)))) as [
    TestUser,
    TestUser,
    TestUser,
  ];
  await seedGuildRows(server.db, a.id, [b.id]);
  const devA = await OlmDevice.create(a);
  const devB = await OlmDevice.create(b);
  const devS = await OlmDevice.create(stranger);
  for (const d of [devA, devB, devS]) await d.upload(server, 1);
  return { a, b, stranger, devA, devB, devS };
}

const queued = async (userId: string) => server.db('to_device_messages').where({ recipient_user_id: userId });
const pull = (user: TestUser, deviceId: string) =>
  api(server, 'GET', `/api/keys/to-device?device_id=${deviceId}`, { user });

describe('to-device relay', () => {
  it('delivers live to the recipient only, with the contract fields, and keeps it until acked', async () => {
    const { a, b, stranger, devA, devB } = await setup();
    const { client: bWs } = await GatewayClient.ready(server.wsUrl, b.accessToken);
    const { client: sWs } = await GatewayClient.ready(server.wsUrl, stranger.accessToken);
    try {
      const res = await sendToDevice(server, devA, { [b.id]: { [devB.deviceId]: { type: 1, ciphertext: 'AwoQ' } } });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ sent: 1 });
      const frame = await bWs.event('to_device');
      expect(frame.data).toEqual({
        id: expect.any(String),
        device_id: devB.deviceId,
        sender_user_id: a.id,
        sender_device_id: devA.deviceId,
        type: 1,
        ciphertext: 'AwoQ',
      });
      sWs.send({ type: 'ping' });
      await sWs.event('pong');
      expect(sWs.events('to_device')).toEqual([]);
      // Delivered live, still queued: a reconnecting device would get it again until it acks.
      expect(await ok(pull(b, devB.deviceId))).toEqual([frame.data]);
      // Acking someone else's message does nothing; the recipient's ack removes it.
      await ok(api(server, 'POST', '/api/keys/to-device/ack', { user: a, body: { ids: [frame.data.id] } }), 204);
      expect(await queued(b.id)).toHaveLength(1);
      await ok(api(server, 'POST', '/api/keys/to-device/ack', { user: b, body: { ids: [frame.data.id] } }), 204);
      expect(await ok(pull(b, devB.deviceId))).toEqual([]);
      expect((await api(server, 'POST', '/api/keys/to-device/ack', { user: b, body: { ids: ['x'] } })).status).toBe(
        400,
      );
    } finally {
      bWs.close();
      sWs.close();
    }
  });

  it('refuses unrelated users, unknown devices and malformed messages; nothing half-written', async () => {
    const { b, stranger, devA, devB, devS } = await setup();
    const cases: [string, Record<string, Record<string, { type: number; ciphertext: string }>>, number][] = [
      ['unrelated user', { [stranger.id]: { [devS.deviceId]: { type: 0, ciphertext: 'x' } } }, 404],
      [
        'one good, one unrelated',
        {
          [b.id]: { [devB.deviceId]: { type: 0, ciphertext: 'x' } },
          [stranger.id]: { [devS.deviceId]: { type: 0, ciphertext: 'x' } },
        },
        404,
      ],
      [
        'unknown device of a related user',
        { [b.id]: { [devB.deviceId]: { type: 0, ciphertext: 'x' }, nope: { type: 0, ciphertext: 'x' } } },
        404,
      ],
      ['unknown user', { [newId()]: { d: { type: 0, ciphertext: 'x' } } }, 404],
      ['empty', {}, 400],
      ['empty ciphertext', { [b.id]: { [devB.deviceId]: { type: 0, ciphertext: '' } } }, 400],
      ['bad type', { [b.id]: { [devB.deviceId]: { type: -1, ciphertext: 'x' } } }, 400],
    ];
    for (const [what, messages, status] of cases) {
      const res = await sendToDevice(server, devA, messages);
      expect(res.status, what).toBe(status);
    }
    const badUserKey = await api(server, 'POST', '/api/keys/to-device', {
      user: devA.user,
      body: { device_id: devA.deviceId, messages: { 'not-a-user': { d: { type: 0, ciphertext: 'x' } } } },
    });
    expect(badUserKey.status).toBe(400);
    expect(await queued(b.id)).toEqual([]);
    expect(await queued(stranger.id)).toEqual([]);
    // The stranger cannot reach A either.
    const back = await sendToDevice(server, devS, {
      [devA.user.id]: { [devA.deviceId]: { type: 0, ciphertext: 'x' } },
    });
    expect(back.status).toBe(404);
    expect(await queued(devA.user.id)).toEqual([]);
  });

  it('a request over 256 KiB is 413 and stores nothing', async () => {
    const { b, devA, devB } = await setup();
    const res = await sendToDevice(server, devA, {
      [b.id]: { [devB.deviceId]: { type: 0, ciphertext: 'A'.repeat(257 * 1024) } },
    });
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe('PAYLOAD_TOO_LARGE');
    expect(await queued(b.id)).toEqual([]);
  });

  it(`caps each device's queue at ${TO_DEVICE_QUEUE_CAP}, dropping the oldest`, async () => {
    const { a, b, devA, devB } = await setup();
    const base = Date.now() - 1000 * 60;
    const rows = Array.from({ length: TO_DEVICE_QUEUE_CAP }, (_, i) => ({
      id: newId(),
      recipient_user_id: b.id,
      recipient_device_id: devB.deviceId,
      sender_user_id: a.id,
      sender_device_id: devA.deviceId,
      type: '1',
      ciphertext: `old-${i}`,
      created_at: base + i,
      expires_at: base + i + 30 * DAY_MS,
    }));
    for (let i = 0; i < rows.length; i += 200) await server.db('to_device_messages').insert(rows.slice(i, i + 200));
    await ok(sendToDevice(server, devA, { [b.id]: { [devB.deviceId]: { type: 1, ciphertext: 'newest' } } }));
    const left = await queued(b.id);
    expect(left).toHaveLength(TO_DEVICE_QUEUE_CAP);
    const texts = new Set(left.map((r: { ciphertext: string }) => r.ciphertext));
    expect(texts.has('newest')).toBe(true);
    expect(texts.has('old-0')).toBe(false);
    expect(texts.has('old-1')).toBe(true);
  });

  it('expired messages are not served and the cleanup job deletes them', async () => {
    const { a, b, devA, devB } = await setup();
    const now = Date.now();
    const row = (ciphertext: string, created: number, expires: number) => ({
      id: newId(),
      recipient_user_id: b.id,
      recipient_device_id: devB.deviceId,
      sender_user_id: a.id,
      sender_device_id: devA.deviceId,
      type: '1',
      ciphertext,
      created_at: created,
      expires_at: expires,
    });
    await server
      .db('to_device_messages')
      .insert([
        row('expired', now - 2 * DAY_MS, now - DAY_MS),
        row('too-old', now - 31 * DAY_MS, now + DAY_MS),
        row('fresh', now, now + 30 * DAY_MS),
      ]);
    const served = (await ok(pull(b, devB.deviceId))).map((m: { ciphertext: string }) => m.ciphertext);
    expect(served).not.toContain('expired');
    expect(served).toContain('fresh');
    expect(await deleteExpiredToDeviceMessages(server.db, now)).toBeGreaterThanOrEqual(2);
    expect((await queued(b.id)).map((r: { ciphertext: string }) => r.ciphertext)).toEqual(['fresh']);
  });
});
