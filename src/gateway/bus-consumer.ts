/**
 * Consumes the bus strictly in order. A dispatch with nothing queued is delivered at once (the hot
 * path: no queue); anything behind an `access_changed` waits until its subscriptions are recomputed,
 * so "access_changed then dispatch to a new channel" always subscribes first.
 */
import type { AccessChangedMessage, BusMessage, DispatchMessage, SessionsRevokedMessage } from '../events/bus.js';
import type { Logger } from '../logger.js';

export interface BusActions {
  deliver(m: DispatchMessage): void;
  revoke(m: SessionsRevokedMessage): void;
  recompute(m: AccessChangedMessage): Promise<void>;
}

export class BusConsumer {
  readonly #actions: BusActions;
  readonly #logger: Logger;
  #queue: BusMessage[] = [];
  #head = 0;
  #draining = false;

  constructor(actions: BusActions, logger: Logger) {
    this.#actions = actions;
    this.#logger = logger;
  }

  take(m: BusMessage): void {
    if (!this.#draining && m.kind === 'dispatch') {
      this.#actions.deliver(m);
      return;
    }
    this.#queue.push(m);
    if (!this.#draining) this.#drain();
  }

  #drain(): void {
    this.#draining = true;
    while (this.#head < this.#queue.length) {
      const m = this.#queue[this.#head++] as BusMessage;
      try {
        if (m.kind === 'dispatch') this.#actions.deliver(m);
        else if (m.kind === 'sessions_revoked') this.#actions.revoke(m);
        else {
          this.#actions
            .recompute(m)
            .catch((err) => this.#logger.error({ err, guildId: m.guildId }, 'gateway access recompute failed'))
            .finally(() => this.#drain());
          return;
        }
      } catch (err) {
        this.#logger.error({ err, kind: m.kind }, 'gateway bus message failed');
      }
    }
    this.#queue = [];
    this.#head = 0;
    this.#draining = false;
  }
}
