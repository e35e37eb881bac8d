/**
 * TOTP (RFC 6238) through otplib: SHA1, 6 digits, 30 s steps, ±1 step. Returns the matched time step
 * so the caller can refuse a step that was already used (replay guard in users.mfa_last_step).
 */
import { authenticator } from 'otplib';

const STEP_SECONDS = 30;
const base = authenticator.clone({ step: STEP_SECONDS, digits: 6, window: 1 });

/** 20 random bytes (160 bits, RFC 4226's recommendation) as base32. */
export const newTotpSecret = (): string => base.generateSecret(20);

export const otpauthUri = (username: string, secret: string): string => base.keyuri(username, 'VoiceChat', secret);

/** The time step the code belongs to (current ±1), or null when it matches none. */
export function matchTotpStep(code: string, secret: string, nowMs = Date.now()): number | null {
  if (!/^\d{6}$/.test(code)) return null;
  const delta = base.clone({ epoch: nowMs }).checkDelta(code, secret);
  if (delta === null) return null;
  return Math.floor(nowMs / 1000 / STEP_SECONDS) + delta;
}
