/** The node's open connections, all of them and by user (revocations and named access changes). */
import type { Metrics } from '../metrics.js';
import type { Connection } from './connection.js';

export class ConnectionRegistry {
  readonly #all = new Set<Connection>();
  readonly #byUser = new Map<string, Set<Connection>>();
  readonly #metrics: Metrics;

  constructor(metrics: Metrics) {
    this.#metrics = metrics;
  }

  get size(): number {
    return this.#all.size;
  }

  add(conn: Connection): void {
    this.#all.add(conn);
    const mine = this.#byUser.get(conn.userId);
    if (mine) mine.add(conn);
    else this.#byUser.set(conn.userId, new Set([conn]));
    this.#metrics.gatewayConnections.inc();
  }

  remove(conn: Connection): void {
    if (!this.#all.delete(conn)) return;
    const mine = this.#byUser.get(conn.userId);
    mine?.delete(conn);
    if (mine?.size === 0) this.#byUser.delete(conn.userId);
    this.#metrics.gatewayConnections.dec();
  }

  all(): Iterable<Connection> {
    return this.#all;
  }

  /** A snapshot of one user's connections (safe to close while iterating). */
  ofUser(userId: string): Connection[] {
    return [...(this.#byUser.get(userId) ?? [])];
  }
}
