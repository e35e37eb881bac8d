/**
 * Named rate limits on rate-limiter-flexible: in memory by default, in Redis when REDIS_URL is set (so
 * limits hold across nodes). Every allowance is multiplied by VOICECHAT_RATE_LIMIT_SCALE and every
 * window by VOICECHAT_RATE_LIMIT_WINDOW_SCALE: tests and benchmarks resize limits, never remove them.
 * A limit marked failClosed refuses requests when its store is unreachable.
 */
import type { Redis } from 'ioredis';
import { type RateLimiterAbstract, RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { errors } from '../errors.js';
import type { Logger } from '../logger.js';
import { OutageLog } from '../net/outage-log.js';

export interface LimitRule {
  /** Allowed events per window (before scaling). */
  points: number;
  /** Window length in seconds (before scaling). */
  durationSec: number;
  /** Once exceeded, block the key this long (seconds, before scaling). */
  blockSec?: number;
  /** Refuse when the store is unreachable (auth limits). */
  failClosed?: boolean;
}

/** The catalogue of limits (DESIGN.md §6–§8 and the issues). Features add theirs here. */
export const RULES = {
  login_ip: { points: 5, durationSec: 60, failClosed: true },
  login_failures_ip: { points: 10, durationSec: 300, blockSec: 900, failClosed: true },
  register_ip: { points: 5, durationSec: 3600, failClosed: true },
  /**
   * forgot-password and reset-password: 5 per hour per IP (shared) and per account. The account
   * budgets are separate so that anonymous forgot-password requests naming a victim cannot use up the
   * budget the victim needs to redeem a valid token.
   */
  password_reset_ip: { points: 5, durationSec: 3600, failClosed: true },
  password_reset_account: { points: 5, durationSec: 3600, failClosed: true },
  password_reset_submit_account: { points: 5, durationSec: 3600, failClosed: true },
  /**
   * Failed logins naming a username that does not exist: locked on the same schedule as a real
   * account (10 failures → 15 minutes), so ACCOUNT_LOCKED does not reveal which names exist.
   */
  login_unknown_account: { points: 10, durationSec: 86400, blockSec: 900, failClosed: true },
  /** Re-entering one's password (change, MFA setup/disable) with a stolen access token. */
  password_confirm_user: { points: 10, durationSec: 300, failClosed: true },
  message_user: { points: 10, durationSec: 10 },
  upload_user: { points: 5, durationSec: 60 },
  /** Fails closed like the login limits: an unreachable store must not lift the upgrade limit. */
  ws_upgrade_ip: { points: 10, durationSec: 60, failClosed: true },
  voice_join_second: { points: 1, durationSec: 1 },
  voice_join_minute: { points: 5, durationSec: 60 },
  // E2EE (issue 10, docs/e2ee.md). Claims: 60 per minute per caller and 10 per minute per caller and
  // target user, since draining someone's one-time keys attacks their forward secrecy; the first
  // refusal per caller and minute is audited (key_claim_audit).
  key_claim_user: { points: 60, durationSec: 60 },
  key_claim_target: { points: 10, durationSec: 60 },
  key_claim_audit: { points: 1, durationSec: 60 },
  to_device_user: { points: 120, durationSec: 10 },
  dm_create_user: { points: 20, durationSec: 60 },
} satisfies Record<string, LimitRule>;

export type RuleName = keyof typeof RULES;

/** Rate-limit key for an address: IPv4 as is, IPv6 grouped by its /64 (see src/net/ip.ts). */
export { ipKey } from '../net/ip.js';

export interface RateLimiterOptions {
  scale: number;
  windowScale: number;
  redis?: Redis;
  logger: Logger;
  /** Key prefix, so several apps can share one Redis. */
  prefix?: string;
  /** Where store failures are reported (once per outage); default: a new one on `logger`. */
  outage?: OutageLog;
}

export class RateLimits {
  #limiters = new Map<string, RateLimiterAbstract>();
  #opts: RateLimiterOptions;

  #outage: OutageLog;

  constructor(opts: RateLimiterOptions) {
    this.#opts = opts;
    this.#outage =
      opts.outage ?? new OutageLog(opts.logger, 'rate-limit store', 'limits marked failClosed refuse requests');
  }

  /** A store failure: logged once per outage (not per request); failClosed rules refuse meanwhile. */
  #storeFailed(e: unknown, limit: string): void {
    this.#outage.down(e, { limit });
  }

  #limiter(name: string, rule: LimitRule): RateLimiterAbstract {
    let l = this.#limiters.get(name);
    if (!l) {
      const { windowScale, redis, prefix = 'vc' } = this.#opts;
      // The Redis store counts whole seconds (a 0 would mean "never expires"), the memory store
      // milliseconds: shrunk test windows stay fractional in memory and round up to 1 s in Redis.
      const seconds = (s: number) => (redis ? Math.max(1, Math.ceil(s)) : Math.max(0.01, Math.round(s * 1000) / 1000));
      const base = {
        keyPrefix: `${prefix}:rl:${name}`,
        points: this.allowance(name as RuleName),
        duration: seconds(rule.durationSec * windowScale),
        blockDuration: rule.blockSec ? seconds(rule.blockSec * windowScale) : 0,
      };
      l = redis
        ? new RateLimiterRedis({ ...base, storeClient: redis, rejectIfRedisNotReady: true })
        : new RateLimiterMemory(base);
      this.#limiters.set(name, l);
    }
    return l;
  }

  /** The scaled number of events a rule allows per window. */
  allowance(name: RuleName): number {
    return Math.max(1, Math.round((RULES[name] as LimitRule).points * this.#opts.scale));
  }

  /**
   * Counts one failure without refusing this request; once the allowance is used up the key is
   * blocked for the rule's blockSec (checked by `retryAfter`). Used for "N failures → block".
   */
  async penalize(name: RuleName, key: string): Promise<void> {
    const rule: LimitRule = RULES[name];
    try {
      const limiter = this.#limiter(name, rule);
      const res = await limiter.penalty(key, 1);
      if (rule.blockSec && res.consumedPoints >= this.allowance(name)) {
        await limiter.block(key, limiter.blockDuration);
      }
    } catch (e) {
      this.#storeFailed(e, name);
    }
  }

  /** Counts one event; throws 429 RATE_LIMITED (with Retry-After) when over the limit. */
  async consume(name: RuleName, key: string, points = 1): Promise<void> {
    const rule: LimitRule = RULES[name];
    try {
      await this.#limiter(name, rule).consume(key, points);
      this.#outage.up();
    } catch (e) {
      if (e instanceof RateLimiterRes) {
        this.#outage.up();
        throw errors.rateLimited(e.msBeforeNext / 1000);
      }
      this.#storeFailed(e, name);
      if (rule.failClosed) throw errors.rateLimited(60);
    }
  }

  /** Seconds until `key` may act again, or 0 when it is not blocked/exhausted. */
  async retryAfter(name: RuleName, key: string): Promise<number> {
    const rule: LimitRule = RULES[name];
    try {
      const res = await this.#limiter(name, rule).get(key);
      if (!res) return 0;
      return res.consumedPoints > this.allowance(name) ? Math.ceil(res.msBeforeNext / 1000) : 0;
    } catch (e) {
      this.#storeFailed(e, name);
      return rule.failClosed ? 60 : 0;
    }
  }

  async reset(name: RuleName, key: string): Promise<void> {
    try {
      await this.#limiter(name, RULES[name]).delete(key);
    } catch (e) {
      this.#opts.logger.warn({ err: e, limit: name }, 'rate-limit reset failed');
    }
  }
}
