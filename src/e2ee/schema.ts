/**
 * Wire schemas of DM channels, device keys, the to-device relay and the Megolm session store
 * (DESIGN.md §6). Keys are libolm's format: unpadded standard base64 of 32 bytes (43 characters),
 * checked for canonical encoding, so one key has exactly one spelling.
 */
import { z } from 'zod';
import { ID } from '../ids.js';

export const MAX_DM_RECIPIENTS = 9;
export const MAX_DEVICES_PER_USER = 10;
export const MAX_ONE_TIME_KEYS_PER_DEVICE = 100;
/** One upload may carry more than the cap (the oldest are dropped); this bounds a single request. */
export const MAX_ONE_TIME_KEYS_PER_UPLOAD = 500;
export const MAX_TO_DEVICE_PER_REQUEST = 1000;
export const MAX_CIPHERTEXT_CHARS = 64 * 1024;
export const MAX_SESSION_DATA_CHARS = 64 * 1024;
/** One to-device request (DESIGN.md: ≤ 256 KiB), tighter than the API's general 1 MiB. */
export const TO_DEVICE_BODY_LIMIT = 256 * 1024;

const uuid = z.string().regex(ID, 'must be an id');

/** Is `s` the canonical unpadded base64 of exactly `bytes` bytes? */
export function isUnpaddedBase64(s: string, bytes: number): boolean {
  if (!/^[A-Za-z0-9+/]+$/.test(s)) return false;
  const buf = Buffer.from(s, 'base64');
  return buf.length === bytes && buf.toString('base64').replace(/=+$/, '') === s;
}

export const curveKey = z.string().refine((s) => isUnpaddedBase64(s, 32), 'must be unpadded base64 of 32 bytes');

export const deviceId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1–64 of A–Z a–z 0–9 _ -');
/** libolm names its keys with base64 text ("AAAAAQ"). */
export const keyId = z.string().regex(/^[A-Za-z0-9_+/=-]{1,64}$/, 'must be 1–64 of A–Z a–z 0–9 _ + / = -');
const keyMap = z.record(keyId, curveKey);

export const dmCreate = z
  .object({
    recipient_ids: z.array(uuid).min(1).max(MAX_DM_RECIPIENTS),
  })
  .strict();

export const keysUpload = z
  .object({
    device_id: deviceId,
    identity_keys: z.object({ curve25519: curveKey, ed25519: curveKey }).strict(),
    one_time_keys: keyMap
      .refine((m) => Object.keys(m).length <= MAX_ONE_TIME_KEYS_PER_UPLOAD, {
        message: `at most ${MAX_ONE_TIME_KEYS_PER_UPLOAD} keys per upload`,
      })
      .optional(),
    fallback_key: keyMap.refine((m) => Object.keys(m).length === 1, 'exactly one key').optional(),
    signature: z
      .string()
      .refine((s) => isUnpaddedBase64(s, 64), 'must be an ed25519 signature (unpadded base64 of 64 bytes)')
      .optional(),
  })
  .strict();

export const deviceQuery = z.object({ device_id: deviceId }).strip();

export const keysClaim = z.object({ device_id: deviceId.optional() }).strict();

const toDeviceContent = z
  .object({
    type: z.number().int().min(0).max(255),
    ciphertext: z.string().min(1).max(MAX_CIPHERTEXT_CHARS),
  })
  .strict();

export const toDeviceSend = z
  .object({
    device_id: deviceId,
    messages: z.record(uuid, z.record(deviceId, toDeviceContent)),
  })
  .strict()
  .refine((b) => Object.values(b.messages).reduce((n, byDevice) => n + Object.keys(byDevice).length, 0) > 0, {
    message: 'at least one message',
    path: ['messages'],
  })
  .refine(
    (b) =>
      Object.values(b.messages).reduce((n, byDevice) => n + Object.keys(byDevice).length, 0) <=
      MAX_TO_DEVICE_PER_REQUEST,
    { message: `at most ${MAX_TO_DEVICE_PER_REQUEST} messages per request`, path: ['messages'] },
  );

export const toDevicePull = z
  .object({
    device_id: deviceId,
    limit: z.coerce.number().int().min(1).max(1000).default(100),
  })
  .strip();

export const toDeviceAck = z.object({ ids: z.array(uuid).min(1).max(1000) }).strict();

export const megolmSessionCreate = z
  .object({
    session_id: z.string().regex(/^[A-Za-z0-9_+/=-]{1,128}$/, 'must be 1–128 of A–Z a–z 0–9 _ + / = -'),
    sender_key: curveKey,
    session_data: z.string().min(1).max(MAX_SESSION_DATA_CHARS),
  })
  .strict();

export type DmCreate = z.output<typeof dmCreate>;
export type KeysUpload = z.output<typeof keysUpload>;
export type ToDeviceSend = z.output<typeof toDeviceSend>;
export type MegolmSessionCreate = z.output<typeof megolmSessionCreate>;
