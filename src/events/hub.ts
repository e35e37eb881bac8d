/**
 * What features and transports get instead of the bus: Outboxes to publish through (typed, flushed
 * after commit) and subscriptions. A feature module that must react when access changes (the access
 * cache, voice) subscribes here itself with `on('access_changed', …)`; the gateway takes every
 * message in order with `subscribe`.
 */
import type { BusHandler, BusKind, BusMessage, EventBus } from './bus.js';
import { Outbox } from './outbox.js';

export class EventHub {
  readonly #bus: EventBus;

  constructor(bus: EventBus) {
    this.#bus = bus;
  }

  /** A new Outbox: collect during the transaction, `flush()` after the commit. */
  outbox(): Outbox {
    return new Outbox(this.#bus);
  }

  /** Calls `handler` for every bus message of one kind (on every node). Returns the unsubscribe. */
  on<K extends BusKind>(kind: K, handler: (message: Extract<BusMessage, { kind: K }>) => void): () => void {
    return this.#bus.subscribe((m) => {
      if (m.kind === kind) handler(m as Extract<BusMessage, { kind: K }>);
    });
  }

  /** Every bus message, in publish order (the gateway consumes the bus this way). */
  subscribe(handler: BusHandler): () => void {
    return this.#bus.subscribe(handler);
  }
}
