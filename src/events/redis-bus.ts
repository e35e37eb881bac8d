/**
 * The multi-node event bus (REDIS_URL set): every message is delivered to this node's handlers at
 * once, in publish order, and published on one Redis pub/sub channel tagged with this node's id; the
 * other nodes deliver it on receipt and each node ignores its own copies. So every node sees every
 * message exactly once (`dispatch`, `sessions_revoked`, `access_changed`), and a node's own messages
 * never wait for a Redis round trip.
 */
import { Redis } from 'ioredis';
import { randomToken } from '../crypto/random.js';
import type { Logger } from '../logger.js';
import { OutageLog } from '../net/outage-log.js';
import { type BusHandler, type BusMessage, deliverToAll, type EventBus } from './bus.js';

const KINDS = new Set(['dispatch', 'sessions_revoked', 'access_changed']);

export class RedisEventBus implements EventBus {
  readonly nodeId = randomToken(12);
  readonly #handlers = new Set<BusHandler>();
  readonly #pub: Redis;
  readonly #sub: Redis;
  readonly #channel: string;
  readonly #logger: Logger;
  readonly #outage: OutageLog;
  #closed = false;

  /**
   * Connects publisher and subscriber, waiting up to `timeoutMs` for the subscription. When Redis is
   * unreachable the node still starts (its own events are delivered locally, like the rate limits it
   * degrades rather than refusing to run); ioredis keeps reconnecting and re-subscribes by itself.
   */
  static async connect(url: string, logger: Logger, opts: { channel?: string; timeoutMs?: number } = {}) {
    const bus = new RedisEventBus(url, logger, opts.channel ?? 'vc:bus');
    const subscribed = bus.#sub.subscribe(bus.#channel);
    subscribed.catch(() => {});
    try {
      await Promise.race([
        subscribed,
        new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), opts.timeoutMs ?? 5000).unref()),
      ]);
    } catch (e) {
      logger.error(
        { err: e },
        'redis event bus unreachable: events reach only this node until Redis is back (other nodes miss them)',
      );
    }
    return bus;
  }

  private constructor(url: string, logger: Logger, channel: string) {
    this.#channel = channel;
    this.#logger = logger;
    this.#pub = new Redis(url, { maxRetriesPerRequest: 2 });
    this.#sub = new Redis(url, { maxRetriesPerRequest: 2 });
    // Once per outage for both connections, not per reconnect attempt or per failed publish.
    this.#outage = new OutageLog(logger, 'redis (event bus)', 'events reach only this node until it is back');
    this.#outage.watch(this.#pub).watch(this.#sub);
    this.#sub.on('message', (ch: string, text: string) => {
      if (ch === this.#channel) this.#receive(text);
    });
  }

  publish(message: BusMessage): void {
    this.#deliver(message);
    if (this.#closed) return;
    let text: string;
    try {
      text = JSON.stringify({ n: this.nodeId, m: message });
    } catch (err) {
      this.#logger.error({ err, kind: message.kind }, 'bus message not serialisable');
      return;
    }
    this.#pub.publish(this.#channel, text).then(
      () => this.#outage.up(),
      (err: unknown) => this.#outage.down(err),
    );
  }

  subscribe(handler: BusHandler): () => void {
    this.#handlers.add(handler);
    return () => this.#handlers.delete(handler);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#handlers.clear();
    this.#sub.disconnect();
    this.#pub.disconnect();
  }

  #receive(text: string): void {
    let envelope: { n?: unknown; m?: { kind?: unknown } };
    try {
      envelope = JSON.parse(text);
    } catch {
      this.#logger.warn('malformed redis bus message ignored');
      return;
    }
    if (envelope.n === this.nodeId) return;
    if (!envelope.m || typeof envelope.m.kind !== 'string' || !KINDS.has(envelope.m.kind)) {
      this.#logger.warn('unknown redis bus message ignored');
      return;
    }
    this.#deliver(envelope.m as BusMessage);
  }

  #deliver(message: BusMessage): void {
    deliverToAll(this.#handlers, message, this.#logger);
  }
}
