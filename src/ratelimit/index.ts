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
  password_reset_ip: { points: 5, durationSec: 3600, failClosed: true },
  password_reset_account: { points: 5, durationSec: 3600, failClosed: true },
  message_user: { points: 10, durationSec: 10 },
  upload_user: { points: 5, durationSec: 60 },
  ws_upgrade_ip: { points: 10, durationSec: 60 },
  voice_join_second: { points: 1, durationSec: 1 },
  voice_join_minute: { points: 5, durationSec: 60 },
} satisfies Record<string, LimitRule>;

export type RuleName = keyof typeof RULES;

/** Rate-limit key for an address: IPv4 as is, IPv6 grouped by its /64. */
export function ipKey(ip: string): string {
  if (!ip.includes(':')) return ip;
  const [head] = ip.split('%') as [string];
  const parts = head.split('::');
  const left = (parts[0] ?? '').split(':').filter(Boolean);
  const right = parts.length > 1 ? (parts[1] ?? '').split(':').filter(Boolean) : [];
  const full = [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  return `${full
    .slice(0, 4)
    .map((h) => Number.parseInt(h, 16).toString(16))
    .join(':')}::/64`;
}

export interface RateLimiterOptions {
  scale: number;
  windowScale: number;
  redis?: Redis;
  logger: Logger;
  /** Key prefix, so several apps can share one Redis. */
  prefix?: string;
}

export class RateLimits {
  #limiters = new Map<string, RateLimiterAbstract>();
  #opts: RateLimiterOptions;

  constructor(opts: RateLimiterOptions) {
    this.#opts = opts;
  }

  #limiter(name: string, rule: LimitRule): RateLimiterAbstract {
    let l = this.#limiters.get(name);
    if (!l) {
      const { scale, windowScale, redis, prefix = 'vc' } = this.#opts;
      const base = {
        keyPrefix: `${prefix}:rl:${name}`,
        points: Math.max(1, Math.round(rule.points * scale)),
        duration: Math.max(1, Math.round(rule.durationSec * windowScale)) as number,
        blockDuration: rule.blockSec ? Math.max(1, Math.round(rule.blockSec * windowScale)) : 0,
      };
      l = redis
        ? new RateLimiterRedis({ ...base, storeClient: redis, rejectIfRedisNotReady: true })
        : new RateLimiterMemory(base);
      this.#limiters.set(name, l);
    }
    return l;
  }

  /** Counts one event; throws 429 RATE_LIMITED (with Retry-After) when over the limit. */
  async consume(name: RuleName, key: string, points = 1): Promise<void> {
    const rule: LimitRule = RULES[name];
    try {
      await this.#limiter(name, rule).consume(key, points);
    } catch (e) {
      if (e instanceof RateLimiterRes) throw errors.rateLimited(e.msBeforeNext / 1000);
      this.#opts.logger.error({ err: e, limit: name }, 'rate-limit store unavailable');
      if (rule.failClosed) throw errors.rateLimited(60);
    }
  }

  /** Seconds until `key` may act again, or 0 when it is not blocked/exhausted. */
  async retryAfter(name: RuleName, key: string): Promise<number> {
    const rule: LimitRule = RULES[name];
    try {
      const res = await this.#limiter(name, rule).get(key);
      if (!res) return 0;
      const limit = Math.max(1, Math.round(rule.points * this.#opts.scale));
      return res.consumedPoints > limit ? Math.ceil(res.msBeforeNext / 1000) : 0;
    } catch (e) {
      this.#opts.logger.error({ err: e, limit: name }, 'rate-limit store unavailable');
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
