/**
 * The node's replay buffer for `resume`: the last topic events (seq, topic, pre-serialised frame), in
 * seq order, bounded by count, bytes and age. It remembers the highest seq it ever evicted, so a
 * resume asking for anything older is refused instead of silently skipping events.
 */

export interface ReplayEntry {
  seq: number;
  topic: string;
  frame: string;
  at: number;
}

export class ReplayBuffer {
  readonly #maxEntries: number;
  readonly #maxBytes: number;
  readonly #maxAgeMs: number;
  #entries: ReplayEntry[] = [];
  #head = 0;
  #bytes = 0;
  #evictedUpTo = 0;

  constructor(opts: { maxEntries: number; maxBytes: number; maxAgeMs: number }) {
    this.#maxEntries = opts.maxEntries;
    this.#maxBytes = opts.maxBytes;
    this.#maxAgeMs = opts.maxAgeMs;
  }

  get size(): number {
    return this.#entries.length - this.#head;
  }

  push(entry: ReplayEntry): void {
    this.#entries.push(entry);
    this.#bytes += entry.frame.length + entry.topic.length;
    while (this.size > this.#maxEntries || this.#bytes > this.#maxBytes) this.#evictOne();
    if (this.#head > 4096 && this.#head * 2 > this.#entries.length) {
      this.#entries = this.#entries.slice(this.#head);
      this.#head = 0;
    }
  }

  /** Drops entries older than the age limit. */
  prune(now: number): void {
    while (this.size > 0 && (this.#entries[this.#head] as ReplayEntry).at < now - this.#maxAgeMs) this.#evictOne();
  }

  /** Whether every event after `seq` is still held (nothing newer than `seq` was evicted). */
  covers(seq: number): boolean {
    return seq >= this.#evictedUpTo;
  }

  /** Entries with `after < seq <= upTo`, in order. */
  *range(after: number, upTo: number): Generator<ReplayEntry> {
    // Binary search for the first entry with seq > after.
    let lo = this.#head;
    let hi = this.#entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.#entries[mid] as ReplayEntry).seq <= after) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < this.#entries.length; i++) {
      const e = this.#entries[i] as ReplayEntry;
      if (e.seq > upTo) return;
      yield e;
    }
  }

  #evictOne(): void {
    const e = this.#entries[this.#head] as ReplayEntry;
    this.#entries[this.#head] = undefined as unknown as ReplayEntry;
    this.#head++;
    this.#bytes -= e.frame.length + e.topic.length;
    this.#evictedUpTo = e.seq;
  }
}
