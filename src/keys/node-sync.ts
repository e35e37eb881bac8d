/**
 * A server node's side of key rotation: on start and every heartbeat it applies the activation state
 * from the database to the keyring it loaded at start, and records itself in `server_nodes` (key ids
 * held, newest rotation applied) so `rotate-keys` knows when every node has switched. Where Redis is
 * configured, rotate-keys' notice on `<prefix>:keys` triggers the same refresh at once. SIGHUP
 * (`reload`) re-reads the keyring file where this process can read it.
 */
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import type { Keyring } from '../crypto/keyring.js';
import { PURPOSES } from '../crypto/keyring.js';
import type { Db } from '../db/knex.js';
import { newId, nowMs } from '../ids.js';
import type { Logger } from '../logger.js';
import { OutageLog } from '../net/outage-log.js';
import * as repo from './repo.js';
import { applyRotations } from './state.js';

/** A node row not updated for this long belongs to a process that died without cleaning up. */
const STALE_NODE_MS = 86_400_000;

export const keysChannel = (prefix: string): string => `${prefix}:keys`;

export interface NodeKeySyncOptions {
  db: Db;
  logger: Logger;
  heartbeatMs: number;
  /** The keyring as loaded from the file (and environment overrides). */
  base: Keyring;
  /** Receives every new effective keyring. */
  apply: (keyring: Keyring) => void;
  /** Re-reads the keyring file (SIGHUP). */
  loadBase?: () => Keyring;
  redis?: { url: string; prefix: string };
}

export class NodeKeySync {
  readonly nodeId = newId();
  #opts: NodeKeySyncOptions;
  #base: Keyring;
  #timer: NodeJS.Timeout | undefined;
  #sub: Redis | undefined;
  #startedAt = nowMs();
  #running: Promise<void> | undefined;
  #again = false;
  #closed = false;
  #warned = new Set<string>();
  #signature: string | undefined;
  #applied: Keyring | undefined;
  #state: { base: Keyring; value: ReturnType<typeof applyRotations> } | undefined;

  private constructor(opts: NodeKeySyncOptions) {
    this.#opts = opts;
    this.#base = opts.base;
  }

  /** Applies the current state before the node serves anything, then keeps it current. */
  static async start(opts: NodeKeySyncOptions): Promise<NodeKeySync> {
    const sync = new NodeKeySync(opts);
    await repo.deleteStaleNodes(opts.db, nowMs() - STALE_NODE_MS).catch(() => {});
    await sync.refresh();
    sync.#timer = setInterval(() => void sync.refresh(), opts.heartbeatMs);
    sync.#timer.unref();
    if (opts.redis) {
      const { Redis } = await import('ioredis');
      const sub = new Redis(opts.redis.url, { lazyConnect: false, maxRetriesPerRequest: 1 });
      new OutageLog(
        opts.logger,
        'redis (key notices)',
        'key changes reach this node by its heartbeat until it is back',
      ).watch(sub);
      sub.on('message', () => void sync.refresh());
      sub.subscribe(keysChannel(opts.redis.prefix)).catch(() => {});
      sync.#sub = sub;
    }
    return sync;
  }

  /** Re-reads the activation state (coalesced: one refresh at a time, one more if asked meanwhile). */
  refresh(): Promise<void> {
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    this.#running = this.#refreshOnce()
      .catch((err) => this.#opts.logger.warn({ err }, 'key state refresh failed; keeping the current keys'))
      .finally(() => {
        this.#running = undefined;
        if (this.#again && !this.#closed) {
          this.#again = false;
          void this.refresh();
        }
      });
    return this.#running;
  }

  async #refreshOnce(): Promise<void> {
    if (this.#closed) return;
    const { db, logger } = this.#opts;
    const rotations = await repo.allRotations(db);
    // Rebuild the keyring only when something changed (derived-key caches hang off its buffers).
    const signature = rotations.map((r) => `${r.id}:${r.state}`).join(',');
    const state =
      signature === this.#signature && this.#state?.base === this.#base
        ? this.#state.value
        : applyRotations(this.#base, rotations);
    this.#signature = signature;
    this.#state = { base: this.#base, value: state };
    for (const m of state.missing) {
      const key = `${m.purpose}:${m.keyId}`;
      if (this.#warned.has(key)) continue;
      this.#warned.add(key);
      logger.error(
        { purpose: m.purpose, key_id: m.keyId },
        'the database activated a key this node does not hold (staged after it started); restart it',
      );
    }
    if (state.keyring !== this.#applied) {
      this.#applied = state.keyring;
      this.#opts.apply(state.keyring);
    }
    // A node that cannot follow an activation does not report it, so rotate-keys waits and names it.
    const seen = state.missing.length > 0 ? null : state.rotationSeen;
    if (this.#closed) return;
    await repo.upsertNode(db, {
      node_id: this.nodeId,
      hostname: hostname(),
      pid: process.pid,
      started_at: this.#startedAt,
      last_seen_at: nowMs(),
      heartbeat_ms: this.#opts.heartbeatMs,
      key_ids: JSON.stringify(Object.fromEntries(PURPOSES.map((p) => [p, this.#base.ids(p)]))),
      rotation_seen: seen,
    });
  }

  /** SIGHUP: re-read the keyring file (plain installs, VOICECHAT_KEYRING) and re-apply the state. */
  async reload(): Promise<boolean> {
    if (!this.#opts.loadBase) return false;
    this.#base = this.#opts.loadBase();
    this.#warned.clear();
    await this.refresh();
    return true;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    await this.#running;
    this.#sub?.disconnect();
    await repo.deleteNode(this.#opts.db, this.nodeId).catch(() => {});
  }
}
