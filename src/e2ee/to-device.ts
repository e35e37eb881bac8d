/**
 * The to-device relay: ciphertext from one of the sender's devices to devices of users who share a
 * guild or a DM with the sender. Each message is stored first, then sent live as `to_device` on the
 * recipient's connections (every connection of the user; clients keep those for their own device_id),
 * and stays queued until the recipient device acks it: at-least-once, never lost by a disconnect.
 * Queues are capped per device (the oldest dropped) and expire after 30 days (the cleanup job).
 */
import { relatedUsers } from '../access/loaders.js';
import type { Actor } from '../actor.js';
import type { Db } from '../db/knex.js';
import { errors } from '../errors.js';
import type { EventMap } from '../events/event-map.js';
import type { EventHub } from '../events/hub.js';
import { newId, nowMs } from '../ids.js';
import { TO_DEVICE_MAX_AGE_MS } from '../jobs/e2ee-cleanup.js';
import type { RateLimits } from '../ratelimit/index.js';
import { deviceRepo, type ToDeviceRow, toDeviceRepo } from './repo.js';
import type { ToDeviceSend } from './schema.js';

/** Messages kept per recipient device; past it the oldest are dropped (documented in docs/e2ee.md). */
export const TO_DEVICE_QUEUE_CAP = 1000;

export interface ToDeviceDeps {
  db: Db;
  events: EventHub;
  limits: RateLimits;
}

export type ToDeviceWire = EventMap['to_device'];

const present = (r: ToDeviceRow): ToDeviceWire => ({
  id: r.id,
  device_id: r.recipient_device_id,
  sender_user_id: r.sender_user_id,
  sender_device_id: r.sender_device_id ?? '',
  type: Number(r.type),
  ciphertext: r.ciphertext,
});

export async function sendToDevice(ctx: ToDeviceDeps, actor: Actor, body: ToDeviceSend): Promise<{ sent: number }> {
  await ctx.limits.consume('to_device_user', actor.userId);
  const recipients = Object.keys(body.messages);
  const now = nowMs();
  const rows = await ctx.db.transaction(async (trx) => {
    if (!(await deviceRepo.find(trx, actor.userId, body.device_id))) throw errors.notFound('No such device.');
    const related = await relatedUsers(trx, actor.userId, recipients);
    if (recipients.some((u) => !related.has(u))) throw errors.notFound('No such user.');
    const known = new Set((await deviceRepo.idsOf(trx, recipients)).map((d) => `${d.user_id}/${d.device_id}`));
    const rows: ToDeviceRow[] = [];
    for (const [userId, byDevice] of Object.entries(body.messages)) {
      for (const [deviceId, content] of Object.entries(byDevice)) {
        if (!known.has(`${userId}/${deviceId}`)) throw errors.notFound('No such device.');
        rows.push({
          id: newId(),
          recipient_user_id: userId,
          recipient_device_id: deviceId,
          sender_user_id: actor.userId,
          sender_device_id: body.device_id,
          type: String(content.type),
          ciphertext: content.ciphertext,
          created_at: now,
          expires_at: now + TO_DEVICE_MAX_AGE_MS,
        });
      }
    }
    await toDeviceRepo.insert(trx, rows);
    for (const [userId, byDevice] of Object.entries(body.messages)) {
      for (const deviceId of Object.keys(byDevice)) {
        if ((await toDeviceRepo.count(trx, userId, deviceId)) > TO_DEVICE_QUEUE_CAP)
          await toDeviceRepo.trim(trx, userId, deviceId, TO_DEVICE_QUEUE_CAP);
      }
    }
    return rows;
  });
  const out = ctx.events.outbox();
  for (const r of rows) out.toUser(r.recipient_user_id, 'to_device', present(r));
  out.flush();
  return { sent: rows.length };
}

/** The device's queued messages, oldest first (they stay until acked). */
export async function pullToDevice(
  ctx: ToDeviceDeps,
  actor: Actor,
  deviceId: string,
  limit: number,
): Promise<ToDeviceWire[]> {
  if (!(await deviceRepo.find(ctx.db, actor.userId, deviceId))) throw errors.notFound('No such device.');
  return (await toDeviceRepo.pending(ctx.db, actor.userId, deviceId, nowMs(), limit)).map(present);
}

/** Deletes delivered messages; ids that are not the caller's (or already gone) are ignored. */
export async function ackToDevice(ctx: ToDeviceDeps, actor: Actor, ids: string[]): Promise<void> {
  await toDeviceRepo.ack(ctx.db, actor.userId, ids);
}
