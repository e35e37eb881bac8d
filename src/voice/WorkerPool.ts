/**
 * The mediasoup worker pool: one worker per core (configurable), each with one WebRtcServer on the
 * media port (+ worker index when several), so an admin opens one UDP+TCP port per worker. A worker
 * that dies is replaced in its slot (same port); its routers close with it, and their rooms learn it
 * through the router's 'workerclose' event (the pool never reaches into rooms). New rooms go to the
 * slot carrying the fewest routers.
 *
 * No worker at start (binary missing, port taken) is a state, not a crash: `status` says why, and the
 * voice service answers VOICE_UNAVAILABLE.
 */
import { EventEmitter } from 'node:events';
import os from 'node:os';
import type { types as ms } from 'mediasoup';
import type { Logger } from '../logger.js';

export interface WorkerPoolOptions {
  /** Number of workers; 0 = one per core. */
  workers: number;
  /** First media port; slot i listens on port + i. 0 = any free port. */
  port: number;
  listenIp: string;
  announcedIp?: string | undefined;
  logger: Logger;
}

export type PoolStatus = { available: true; workers: number } | { available: false; reason: string };

/** One slot of the pool: the current worker and its WebRtcServer. */
export interface WorkerSlot {
  index: number;
  worker: ms.Worker;
  webRtcServer: ms.WebRtcServer;
  routers: number;
}

export interface WorkerPoolEvents {
  /** A worker died; its routers (and so its rooms) are already closed. */
  'worker-died': [{ index: number; pid: number; error: Error }];
  /** A replacement worker is serving the slot. */
  'worker-replaced': [{ index: number; pid: number }];
  closed: [];
}

type Mediasoup = typeof import('mediasoup');

export class WorkerPool extends EventEmitter<WorkerPoolEvents> {
  readonly #opts: WorkerPoolOptions;
  readonly #mediasoup: Mediasoup;
  readonly #slots: (WorkerSlot | undefined)[];
  #closed = false;
  #unavailableReason: string | undefined;

  /** Starts every worker; never throws for a missing or broken worker (the pool is then unavailable). */
  static async create(opts: WorkerPoolOptions): Promise<WorkerPool> {
    let mediasoup: Mediasoup;
    try {
      mediasoup = await import('mediasoup');
    } catch (err) {
      const pool = new WorkerPool(opts, undefined as unknown as Mediasoup, 0);
      pool.#unavailableReason = `mediasoup cannot be loaded (${(err as Error).message.split('\n')[0]})`;
      return pool;
    }
    const count = opts.workers > 0 ? opts.workers : os.availableParallelism();
    const pool = new WorkerPool(opts, mediasoup, count);
    const results = await Promise.allSettled(Array.from({ length: count }, (_, i) => pool.#startSlot(i)));
    const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failures.length === count) {
      pool.#unavailableReason = describeStartFailure(failures[0]?.reason);
    } else if (failures.length > 0) {
      opts.logger.warn(
        { failed: failures.length, workers: count, reason: describeStartFailure(failures[0]?.reason) },
        'some mediasoup workers failed to start; voice runs on the others',
      );
    }
    return pool;
  }

  private constructor(opts: WorkerPoolOptions, mediasoup: Mediasoup, count: number) {
    super();
    this.#opts = opts;
    this.#mediasoup = mediasoup;
    this.#slots = new Array(count).fill(undefined);
  }

  get status(): PoolStatus {
    if (this.#closed) return { available: false, reason: 'voice is shutting down' };
    const live = this.#slots.filter(Boolean).length;
    if (live > 0) return { available: true, workers: live };
    return { available: false, reason: this.#unavailableReason ?? 'no mediasoup worker is running' };
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The live slots (for metrics and tests). */
  slots(): WorkerSlot[] {
    return this.#slots.filter((s): s is WorkerSlot => s !== undefined);
  }

  /** Creates a router on the least-loaded worker; the caller owns (and closes) it. */
  async createRouter(mediaCodecs: ms.RouterRtpCodecCapability[]): Promise<{ router: ms.Router; slot: WorkerSlot }> {
    const slot = this.slots().sort((a, b) => a.routers - b.routers)[0];
    if (!slot) throw new Error(this.status.available ? 'no worker' : this.status.reason);
    const router = await slot.worker.createRouter({ mediaCodecs });
    slot.routers += 1;
    router.observer.once('close', () => {
      slot.routers -= 1;
    });
    return { router, slot };
  }

  async #startSlot(index: number): Promise<WorkerSlot> {
    const { logger, port, listenIp, announcedIp } = this.#opts;
    const worker = await this.#mediasoup.createWorker({ logLevel: 'warn' });
    try {
      const listen = (protocol: 'udp' | 'tcp'): ms.TransportListenInfo => ({
        protocol,
        ip: listenIp,
        ...(announcedIp ? { announcedAddress: announcedIp } : {}),
        ...(port > 0 ? { port: port + index } : {}),
      });
      const webRtcServer = await worker.createWebRtcServer({ listenInfos: [listen('udp'), listen('tcp')] });
      const slot: WorkerSlot = { index, worker, webRtcServer, routers: 0 };
      if (this.#closed) {
        worker.close();
        throw new Error('pool closed while starting');
      }
      this.#slots[index] = slot;
      worker.once('died', (error) => this.#onDied(slot, error));
      logger.info(
        { worker: index, pid: worker.pid, port: port > 0 ? port + index : 'any' },
        'mediasoup worker started',
      );
      return slot;
    } catch (err) {
      worker.close();
      throw err;
    }
  }

  #onDied(slot: WorkerSlot, error: Error): void {
    if (this.#slots[slot.index] === slot) this.#slots[slot.index] = undefined;
    this.#opts.logger.error({ worker: slot.index, pid: slot.worker.pid, err: error }, 'mediasoup worker died');
    this.emit('worker-died', { index: slot.index, pid: slot.worker.pid, error });
    void this.#replace(slot.index, 0);
  }

  async #replace(index: number, attempt: number): Promise<void> {
    if (this.#closed) return;
    try {
      const slot = await this.#startSlot(index);
      this.emit('worker-replaced', { index, pid: slot.worker.pid });
    } catch (err) {
      // The dead worker's port may take a moment to be released; back off up to ~30 s, then keep trying.
      const delay = Math.min(30_000, 250 * 2 ** attempt);
      this.#opts.logger.warn({ worker: index, err, retry_ms: delay }, 'mediasoup worker replacement failed');
      setTimeout(() => void this.#replace(index, attempt + 1), delay).unref();
    }
  }

  /** Closes every worker (and so every router and transport). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const slot of this.#slots) slot?.worker.close();
    this.#slots.fill(undefined);
    this.emit('closed');
  }
}

function describeStartFailure(err: unknown): string {
  const e = err as NodeJS.ErrnoException | undefined;
  if (e?.code === 'ENOENT') {
    return 'the mediasoup worker binary is missing (its install failed; run `npm rebuild voicechat` and read its output)';
  }
  const msg = e?.message?.split('\n')[0] ?? String(err);
  if (/address already in use|EADDRINUSE/i.test(msg)) return `the media port is already in use (${msg})`;
  return `the mediasoup worker failed to start (${msg})`;
}
