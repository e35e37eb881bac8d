/**
 * What every transport and feature receives: configuration, storage, keys, logging, metrics and the
 * event bus. Built once by createApp (the composition root); features take what they need from it.
 */
import type { SessionGuard } from '../auth/session-guard.js';
import type { Config } from '../config/index.js';
import type { Keyring } from '../crypto/keyring.js';
import type { Db, Dialect } from '../db/knex.js';
import type { EventBus } from '../events/bus.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { RateLimits } from '../ratelimit/index.js';
import type { VoiceService } from '../voice/VoiceService.js';

export interface AppContext {
  config: Config;
  db: Db;
  dialect: Dialect;
  keyring: Keyring;
  logger: Logger;
  metrics: Metrics;
  /** Features publish gateway events and control messages here, after their transaction commits. */
  bus: EventBus;
  limits: RateLimits;
  /** Access-token + live-session check shared by HTTP and the gateway. */
  sessions: SessionGuard;
  /** Voice rooms on the mediasoup worker pool (started by `start()`; may be unavailable). */
  voice: VoiceService;
}
