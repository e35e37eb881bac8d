/**
 * Logs an outage of a backing service (a Redis connection) once when it starts and once when it ends,
 * however many errors, reconnect attempts and failed requests fall in between: a Redis outage used to
 * write a line per request (rate limits, bus publishes) and per reconnect attempt.
 */
import type { EventEmitter } from 'node:events';
import type { Logger } from '../logger.js';

export class OutageLog {
  #down = false;
  readonly #logger: Logger;
  readonly #what: string;
  readonly #consequence: string;

  /** `what` names the service ("redis (rate limits)"); `consequence` says what users see meanwhile. */
  constructor(logger: Logger, what: string, consequence: string) {
    this.#logger = logger;
    this.#what = what;
    this.#consequence = consequence;
  }

  get isDown(): boolean {
    return this.#down;
  }

  /** A failure: logged only if the service was up until now. */
  down(err: unknown, extra: Record<string, unknown> = {}): void {
    if (this.#down) return;
    this.#down = true;
    this.#logger.error({ err, ...extra }, `${this.#what} unavailable: ${this.#consequence}`);
  }

  /** A success: ends the outage (logged once). */
  up(): void {
    if (!this.#down) return;
    this.#down = false;
    this.#logger.info(`${this.#what} available again`);
  }

  /** Follows an ioredis client: its `error` events start an outage, `ready` ends it. */
  watch(client: EventEmitter): this {
    client.on('error', (err: unknown) => this.down(err));
    client.on('ready', () => this.up());
    return this;
  }
}
