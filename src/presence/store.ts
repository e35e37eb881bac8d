/**
 * Who is connected to the gateway, cluster-wide, and the status each user chose: what `ready` shows
 * and what decides whether a user's last socket closing means "offline". A node records only whether
 * it holds at least one socket of a user (the gateway keeps the per-socket count); with Redis every
 * node's record is visible to all, so a user with sockets on two nodes stays online until both are
 * gone. A node that dies without cleaning up stops counting once its liveness key expires.
 *
 * Redis layout (prefix `<VOICECHAT_REDIS_PREFIX>:presence:`):
 *   u:<user id>  hash: one field per node holding the user ("1"), field `s` = the chosen status;
 *                expires a day after the last change, so a chosen status (e.g. invisible) survives
 *                a reconnect but not forever.
 *   n:<node id>  "1" with a TTL of three heartbeats, refreshed every heartbeat while the node runs.
 */
import type { Redis } from 'ioredis';
import type { Logger } from '../logger.js';
import { OutageLog } from '../net/outage-log.js';

export type ChosenStatus = 'online' | 'idle' | 'dnd' | 'invisible';
export type VisibleStatus = 'online' | 'idle' | 'dnd';

/** What others see: invisible is shown as offline (absent). */
export const visibleStatus = (s: ChosenStatus | undefined): VisibleStatus | undefined =>
  s === 'invisible' ? undefined : (s ?? 'online');

const isChosen = (s: unknown): s is ChosenStatus => s === 'online' || s === 'idle' || s === 'dnd' || s === 'invisible';

export interface PresenceStore {
  /** This node now holds `userId`. `elsewhere`: another live node already did; `status`: the chosen one. */
  attach(userId: string): Promise<{ elsewhere: boolean; status: ChosenStatus | undefined }>;
  /** This node holds `userId` no more. `elsewhere`: a live node still does. */
  detach(userId: string): Promise<{ elsewhere: boolean; status: ChosenStatus | undefined }>;
  setStatus(userId: string, status: ChosenStatus): Promise<void>;
  /** The visible status of each given user who is connected somewhere; offline users are absent. */
  visible(userIds: readonly string[]): Promise<Map<string, VisibleStatus>>;
  close(): Promise<void>;
}

const STATUS_TTL_MS = 86_400_000;

/** One node, no Redis: everything is in this process. */
export class LocalPresenceStore implements PresenceStore {
  readonly #here = new Set<string>();
  readonly #status = new Map<string, { status: ChosenStatus; at: number }>();

  #chosen(userId: string): ChosenStatus | undefined {
    const s = this.#status.get(userId);
    if (s && Date.now() - s.at > STATUS_TTL_MS) this.#status.delete(userId);
    return this.#status.get(userId)?.status;
  }

  async attach(userId: string) {
    this.#here.add(userId);
    return { elsewhere: false, status: this.#chosen(userId) };
  }

  async detach(userId: string) {
    this.#here.delete(userId);
    return { elsewhere: false, status: this.#chosen(userId) };
  }

  async setStatus(userId: string, status: ChosenStatus) {
    this.#status.set(userId, { status, at: Date.now() });
  }

  async visible(userIds: readonly string[]) {
    const out = new Map<string, VisibleStatus>();
    for (const id of userIds) {
      if (!this.#here.has(id)) continue;
      const v = visibleStatus(this.#chosen(id));
      if (v) out.set(id, v);
    }
    return out;
  }

  async close() {}
}

// KEYS[1] = the user's hash; ARGV = node id, hash TTL (ms), node key prefix, 'attach' | 'detach'.
// Answers {live nodes other than this one holding the user, chosen status or ''}.
const ATTACH_DETACH = `
local fields = redis.call('HGETALL', KEYS[1])
local others = 0
for i = 1, #fields, 2 do
  local f = fields[i]
  if f ~= 's' and f ~= ARGV[1] and redis.call('EXISTS', ARGV[3] .. f) == 1 then others = others + 1 end
end
if ARGV[4] == 'attach' then
  redis.call('HSET', KEYS[1], ARGV[1], '1')
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
else
  redis.call('HDEL', KEYS[1], ARGV[1])
end
return {others, redis.call('HGET', KEYS[1], 's') or ''}
`;

/** Several nodes sharing Redis (REDIS_URL). */
export class RedisPresenceStore implements PresenceStore {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #nodeId: string;
  readonly #heartbeatMs: number;
  readonly #timer: NodeJS.Timeout;
  /** One line when Redis goes away and one when it is back, not one per connection or heartbeat. */
  readonly #outage: OutageLog;

  constructor(opts: { redis: Redis; prefix: string; nodeId: string; heartbeatMs: number; logger: Logger }) {
    this.#redis = opts.redis;
    this.#prefix = `${opts.prefix}:presence:`;
    this.#nodeId = opts.nodeId;
    this.#heartbeatMs = opts.heartbeatMs;
    this.#outage = new OutageLog(
      opts.logger,
      'redis (presence)',
      'ready shows members offline and presence changes on other nodes are not seen',
    );
    const beat = () =>
      this.#watch(this.#redis.set(this.#nodeKey(this.#nodeId), '1', 'PX', 3 * this.#heartbeatMs)).catch(() => {});
    void beat();
    this.#timer = setInterval(beat, this.#heartbeatMs);
    this.#timer.unref();
  }

  /** Passes a Redis call through, recording the start and end of an outage. */
  async #watch<T>(call: Promise<T>): Promise<T> {
    try {
      const out = await call;
      this.#outage.up();
      return out;
    } catch (err) {
      this.#outage.down(err);
      throw err;
    }
  }

  #userKey(userId: string) {
    return `${this.#prefix}u:${userId}`;
  }

  #nodeKey(nodeId: string) {
    return `${this.#prefix}n:${nodeId}`;
  }

  async #run(userId: string, op: 'attach' | 'detach') {
    const [others, status] = (await this.#watch(
      this.#redis.eval(ATTACH_DETACH, 1, this.#userKey(userId), this.#nodeId, STATUS_TTL_MS, `${this.#prefix}n:`, op),
    )) as [number, string];
    return { elsewhere: Number(others) > 0, status: isChosen(status) ? status : undefined };
  }

  attach(userId: string) {
    return this.#run(userId, 'attach');
  }

  detach(userId: string) {
    return this.#run(userId, 'detach');
  }

  async setStatus(userId: string, status: ChosenStatus) {
    const key = this.#userKey(userId);
    await this.#watch(this.#redis.multi().hset(key, 's', status).pexpire(key, STATUS_TTL_MS).exec());
  }

  async visible(userIds: readonly string[]) {
    const out = new Map<string, VisibleStatus>();
    if (userIds.length === 0) return out;
    const pipe = this.#redis.pipeline();
    for (const id of userIds) pipe.hgetall(this.#userKey(id));
    const results = (await this.#watch(pipe.exec())) ?? [];
    const held = new Map<string, { nodes: string[]; status: ChosenStatus | undefined }>();
    const nodes = new Set<string>();
    results.forEach(([err, value], i) => {
      if (err) return;
      const h = value as Record<string, string>;
      const ns = Object.keys(h).filter((f) => f !== 's');
      if (ns.length === 0) return;
      for (const n of ns) nodes.add(n);
      held.set(userIds[i] as string, { nodes: ns, status: isChosen(h.s) ? h.s : undefined });
    });
    if (held.size === 0) return out;
    const nodeList = [...nodes];
    const alive = await this.#watch(this.#redis.mget(nodeList.map((n) => this.#nodeKey(n))));
    const live = new Set(nodeList.filter((_, i) => alive[i] !== null));
    for (const [id, h] of held) {
      if (!h.nodes.some((n) => live.has(n))) continue;
      const v = visibleStatus(h.status);
      if (v) out.set(id, v);
    }
    return out;
  }

  async close() {
    clearInterval(this.#timer);
    // Users held only here count as offline at once for everyone else.
    await this.#redis.del(this.#nodeKey(this.#nodeId)).catch(() => {});
  }
}
