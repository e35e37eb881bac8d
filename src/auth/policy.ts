/**
 * The security defaults of accounts (DESIGN.md §6, issue 3) in one place. Windows are multiplied by
 * VOICECHAT_RATE_LIMIT_WINDOW_SCALE like every rate-limit window, so tests can shrink them.
 */
import type { Config } from '../config/index.js';

/** Consecutive failed logins (bad password or bad MFA code) that lock an account. */
export const LOCKOUT_THRESHOLD = 10;
export const LOCKOUT_SECONDS = 15 * 60;
export const RESET_TOKEN_TTL_SECONDS = 60 * 60;
export const BACKUP_CODE_COUNT = 10;
export const USER_AGENT_MAX = 512;

export const lockoutMs = (config: Pick<Config, 'rateLimitWindowScale'>): number =>
  Math.max(10, Math.round(LOCKOUT_SECONDS * 1000 * config.rateLimitWindowScale));

export const truncateUserAgent = (ua: string | undefined): string | null =>
  // Counted in code points, as Postgres counts varchar(512), so a surrogate pair is never split.
  ua ? Array.from(ua).slice(0, USER_AGENT_MAX).join('') : null;
