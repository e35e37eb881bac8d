/**
 * Flow control of every connection: the op rate (120 per 60 s, then 4029), malformed frames (10, then
 * 4002) and backpressure. uWS queues at most twice our cap; a socket past the cap (1 MiB) is ended with
 * 4008 while its buffer still has room for the close frame. Checked after every direct send, every
 * 100 ms, and whenever 256 KiB were published since the last check (no socket can have gained more).
 */
import type { Connection, Socket } from './connection.js';

export const BACKPRESSURE_CAP = 1024 * 1024;
export const OPS_PER_WINDOW = 120;
export const OPS_WINDOW_MS = 60_000;
export const MAX_MALFORMED = 10;
const SWEEP_EVERY_BYTES = 256 * 1024;

export class FlowControl {
  readonly #opsLimit: number;
  readonly #opsWindowMs: number;
  readonly #onSlowConsumer: (conn: Connection) => void;
  /** Bytes published since the last backpressure sweep. */
  #publishedSinceSweep = 0;

  constructor(opts: { rateLimitScale: number; windowScale: number; onSlowConsumer: (conn: Connection) => void }) {
    this.#opsLimit = Math.max(1, Math.round(OPS_PER_WINDOW * opts.rateLimitScale));
    this.#opsWindowMs = Math.max(1000, Math.round(OPS_WINDOW_MS * opts.windowScale));
    this.#onSlowConsumer = opts.onSlowConsumer;
  }

  /** Counts one incoming frame; false when the connection is over its op rate. */
  admitOp(conn: Connection, now: number): boolean {
    if (now - conn.opsWindowStart >= this.#opsWindowMs) {
      conn.opsWindowStart = now;
      conn.ops = 0;
    }
    return ++conn.ops <= this.#opsLimit;
  }

  /** Counts one malformed frame; true when the connection has sent too many. */
  malformed(conn: Connection): boolean {
    return ++conn.malformed >= MAX_MALFORMED;
  }

  /** Writes a frame to one socket and checks its backpressure. */
  send(conn: Connection, frame: string): void {
    const ws = conn.ws;
    if (ws.send(frame, false, false) === 2 || ws.getBufferedAmount() > BACKPRESSURE_CAP) this.#onSlowConsumer(conn);
  }

  /** Accounts a topic publish; sweeps when enough bytes went out since the last sweep. */
  published(bytes: number, conns: Iterable<Connection>): void {
    this.#publishedSinceSweep += bytes;
    if (this.#publishedSinceSweep > SWEEP_EVERY_BYTES) this.sweep(conns);
  }

  sweep(conns: Iterable<Connection>): void {
    this.#publishedSinceSweep = 0;
    for (const conn of conns) if (isOverCap(conn.ws)) this.#onSlowConsumer(conn);
  }
}

const isOverCap = (ws: Socket): boolean => ws.getBufferedAmount() > BACKPRESSURE_CAP;
