/**
 * The device key directory: identity keys per device (≤ 10 devices per user; a device's identity keys
 * never change silently: 409), one-time keys (≤ 100 unclaimed per device, the oldest dropped), one
 * fallback key, the optional upload signature (checked with Node's ed25519), and the claim that hands
 * each one-time key out at most once, even to concurrent claimers. Only users who share a guild or a
 * DM with the caller can be looked up or claimed from (404 otherwise). Client device keys live here,
 * apart from the server's own keyring (src/keys/).
 */
import { createPublicKey, verify } from 'node:crypto';
import { relatedUsers } from '../access/loaders.js';
import type { Actor } from '../actor.js';
import { recordActorAudit } from '../audit/writer.js';
import { canonicalJson } from '../canonical-json.js';
import type { Db } from '../db/knex.js';
import { type AppError, errors, isAppError } from '../errors.js';
import { isId, iso, newId, nowMs } from '../ids.js';
import type { Logger } from '../logger.js';
import type { RateLimits } from '../ratelimit/index.js';
import type { ClaimBatcher } from './claim-batcher.js';
import { type DeviceRow, deviceRepo, oneTimeKeyRepo, toDeviceRepo } from './repo.js';
import { type KeysUpload, MAX_DEVICES_PER_USER, MAX_ONE_TIME_KEYS_PER_DEVICE } from './schema.js';

export interface KeysDeps {
  db: Db;
  limits: RateLimits;
  logger: Logger;
  /** Claims go through it: group commit on SQLite (see claim-batcher.ts). */
  keyClaims: ClaimBatcher;
}

export interface DeviceKeysWire {
  user_id: string;
  device_id: string;
  identity_keys: { curve25519: string; ed25519: string };
  signature: string | null;
  created_at: string | null;
}

export interface ClaimedKeyWire {
  key_id: string;
  key: string;
  fallback: boolean;
}

const presentDevice = (d: DeviceRow): DeviceKeysWire => ({
  user_id: d.user_id,
  device_id: d.device_id,
  identity_keys: { curve25519: d.curve25519, ed25519: d.ed25519 },
  signature: d.signature,
  created_at: iso(d.created_at),
});

/** Does `signature` verify, under the body's own ed25519 identity key, over the canonical body? */
export function uploadSignatureValid(body: KeysUpload): boolean {
  const { signature, ...signed } = body;
  if (!signature) return true;
  try {
    const key = createPublicKey({
      key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(body.identity_keys.ed25519, 'base64').toString('base64url') },
      format: 'jwk',
    });
    return verify(null, Buffer.from(canonicalJson(signed), 'utf8'), key, Buffer.from(signature, 'base64'));
  } catch {
    return false; // not a point on the curve, etc.
  }
}

/** The caller's own device, or 404 (someone else's device id looks like a missing one). */
async function ownDevice(db: Db, userId: string, deviceId: string): Promise<DeviceRow> {
  const device = await deviceRepo.find(db, userId, deviceId);
  if (!device) throw errors.notFound('No such device.');
  return device;
}

/** Registers a device (or refreshes one) and stores its one-time and fallback keys. */
export async function uploadKeys(
  ctx: KeysDeps,
  actor: Actor,
  body: KeysUpload,
): Promise<{ one_time_key_count: number }> {
  if (!uploadSignatureValid(body)) {
    throw errors.validation('The signature does not verify.', [
      { path: 'signature', message: 'not a valid ed25519 signature of the upload' },
    ]);
  }
  const now = nowMs();
  return ctx.db.transaction(async (trx) => {
    await deviceRepo.lockUser(trx, actor.userId);
    let device = await deviceRepo.find(trx, actor.userId, body.device_id);
    const fallback = body.fallback_key ? Object.entries(body.fallback_key)[0] : undefined;
    if (device) {
      if (device.curve25519 !== body.identity_keys.curve25519 || device.ed25519 !== body.identity_keys.ed25519) {
        throw errors.conflict('This device already has other identity keys; delete the device first.');
      }
      await deviceRepo.update(trx, device.id, {
        last_seen_at: now,
        ...(body.signature ? { signature: body.signature } : {}),
        ...(fallback ? { fallback_key_id: fallback[0], fallback_key: fallback[1] } : {}),
      });
    } else {
      if ((await deviceRepo.count(trx, actor.userId)) >= MAX_DEVICES_PER_USER) {
        throw errors.conflict(`A user has at most ${MAX_DEVICES_PER_USER} devices; delete one first.`);
      }
      device = {
        id: newId(),
        user_id: actor.userId,
        device_id: body.device_id,
        curve25519: body.identity_keys.curve25519,
        ed25519: body.identity_keys.ed25519,
        signature: body.signature ?? null,
        fallback_key_id: fallback?.[0] ?? null,
        fallback_key: fallback?.[1] ?? null,
        created_at: now,
        last_seen_at: now,
      };
      await deviceRepo.insert(trx, device);
      await recordActorAudit(trx, actor, 'e2ee.device_add', 'device', body.device_id, {
        curve25519: device.curve25519,
        ed25519: device.ed25519,
      });
    }
    const otks = Object.entries(body.one_time_keys ?? {});
    if (otks.length > 0) {
      const deviceRowId = device.id;
      const existing = new Map(
        (
          await oneTimeKeyRepo.existing(
            trx,
            deviceRowId,
            otks.map(([id]) => id),
          )
        ).map((k) => [k.key_id, k.key]),
      );
      for (const [id, key] of otks) {
        if (existing.has(id) && existing.get(id) !== key) {
          throw errors.conflict(`One-time key ${id} was already uploaded with another value.`);
        }
      }
      // In upload order: ids are time-ordered, so "newest" is the last uploaded.
      await oneTimeKeyRepo.insert(
        trx,
        otks
          .filter(([id]) => !existing.has(id))
          .map(([key_id, key]) => ({ id: newId(), device_id: deviceRowId, key_id, key, created_at: now })),
      );
      await oneTimeKeyRepo.trim(trx, deviceRowId, MAX_ONE_TIME_KEYS_PER_DEVICE);
    }
    return { one_time_key_count: await oneTimeKeyRepo.count(trx, device.id) };
  });
}

export async function countKeys(ctx: KeysDeps, actor: Actor, deviceId: string) {
  const device = await ownDevice(ctx.db, actor.userId, deviceId);
  return { one_time_key_count: await oneTimeKeyRepo.count(ctx.db, device.id) };
}

/** A user's devices and identity keys, for users related to the caller (else 404). */
export async function userKeys(ctx: KeysDeps, actor: Actor, userId: string): Promise<DeviceKeysWire[]> {
  if (!isId(userId) || !(await relatedUsers(ctx.db, actor.userId, [userId])).has(userId)) {
    throw errors.notFound('No such user.');
  }
  return (await deviceRepo.listOf(ctx.db, userId)).map(presentDevice);
}

/** Removes one of the caller's devices with its keys and queued messages; audited. */
export async function deleteDevice(ctx: KeysDeps, actor: Actor, deviceId: string): Promise<void> {
  await ctx.db.transaction(async (trx) => {
    const device = await deviceRepo.find(trx, actor.userId, deviceId);
    if (!device) throw errors.notFound('No such device.');
    await oneTimeKeyRepo.deleteOfDevice(trx, device.id);
    await toDeviceRepo.deleteOfDevice(trx, actor.userId, device.device_id);
    await deviceRepo.delete(trx, device.id);
    await recordActorAudit(trx, actor, 'e2ee.device_remove', 'device', device.device_id, {
      curve25519: device.curve25519,
    });
  });
}

/**
 * Claim limits: per caller, and per caller and target (draining one person's one-time keys is an
 * attack on their forward secrecy). The first refusal of a window is audited, not every one (a flood
 * must not flood the audit log too).
 */
async function consumeClaimBudget(ctx: KeysDeps, actor: Actor, targetId: string): Promise<void> {
  try {
    await ctx.limits.consume('key_claim_user', actor.userId);
    await ctx.limits.consume('key_claim_target', `${actor.userId}:${targetId}`);
  } catch (e) {
    if (isAppError(e) && e.code === 'RATE_LIMITED') await auditRefusal(ctx, actor, targetId, e);
    throw e;
  }
}

async function auditRefusal(ctx: KeysDeps, actor: Actor, targetId: string, refusal: AppError): Promise<void> {
  try {
    await ctx.limits.consume('key_claim_audit', actor.userId);
  } catch {
    return; // already audited in this window
  }
  try {
    await recordActorAudit(ctx.db, actor, 'e2ee.claim_refused', 'user', targetId, {
      retry_after: Number(refusal.headers?.['Retry-After'] ?? 0),
    });
  } catch (err) {
    ctx.logger.error({ err }, 'audit of a refused key claim failed');
  }
}

/**
 * Takes one one-time key per device of the user (or of one device), atomically: every key is handed
 * out at most once. A device with none left yields its fallback key (`fallback: true`); one with
 * neither is absent.
 */
export async function claimKeys(
  ctx: KeysDeps,
  actor: Actor,
  userId: string,
  deviceId: string | undefined,
): Promise<{ one_time_keys: Record<string, ClaimedKeyWire> }> {
  if (!isId(userId) || !(await relatedUsers(ctx.db, actor.userId, [userId])).has(userId)) {
    throw errors.notFound('No such user.');
  }
  await consumeClaimBudget(ctx, actor, userId);
  const devices = (await deviceRepo.listOf(ctx.db, userId)).filter((d) => !deviceId || d.device_id === deviceId);
  if (deviceId && devices.length === 0) throw errors.notFound('No such device.');
  const taken = await ctx.keyClaims.run(async (trx) => {
    const keys: ({ key_id: string; key: string } | undefined)[] = [];
    for (const d of devices) keys.push(await oneTimeKeyRepo.take(trx, d.id));
    return keys;
  });
  const claimed: Record<string, ClaimedKeyWire> = {};
  devices.forEach((d, i) => {
    const key = taken[i];
    if (key) claimed[d.device_id] = { key_id: key.key_id, key: key.key, fallback: false };
    else if (d.fallback_key_id && d.fallback_key)
      claimed[d.device_id] = { key_id: d.fallback_key_id, key: d.fallback_key, fallback: true };
  });
  return { one_time_keys: claimed };
}
