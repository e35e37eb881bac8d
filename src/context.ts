/**
 * What every transport and feature receives: configuration, storage, keys, logging, metrics, the
 * event hub and the app's own runtime objects (caches, the message writer, the mailer). Built once by
 * createApp (the composition root), which also closes them in order; two apps in one process share
 * none of it. Transports (http, gateway) take it whole; features declare the part they need as their
 * own `…Deps` type and never import this file.
 */
import type { ChannelAccessCache } from './access/cache.js';
import type { Mailer } from './auth/mailer.js';
import type { SessionGuard } from './auth/session-guard.js';
import type { Config } from './config/index.js';
import type { Keyring } from './crypto/keyring.js';
import type { DummyPassword } from './crypto/passwords.js';
import type { Db, Dialect } from './db/knex.js';
import type { ClaimBatcher } from './e2ee/claim-batcher.js';
import type { EventHub } from './events/hub.js';
import type { Logger } from './logger.js';
import type { MessageInserter } from './messages/repo.js';
import type { Metrics } from './metrics.js';
import type { RateLimits } from './ratelimit/index.js';
import type { VoiceService } from './voice/VoiceService.js';

export interface AppContext {
  config: Config;
  db: Db;
  dialect: Dialect;
  keyring: Keyring;
  logger: Logger;
  metrics: Metrics;
  /** Outboxes to publish through (after commit) and bus subscriptions; nothing publishes around it. */
  events: EventHub;
  limits: RateLimits;
  /** Access-token + live-session check shared by HTTP and the gateway. */
  sessions: SessionGuard;
  /** Cached channel access for the hot paths (messages, uploads). */
  channelAccess: ChannelAccessCache;
  /** Group-committing message inserts (a worker thread on SQLite, started on first use). */
  messageWriter: MessageInserter;
  dummyPassword: DummyPassword;
  /** SMTP for password-reset mail, when configured. */
  mailer: Mailer | undefined;
  /** One-time key claims (group commit on SQLite). */
  keyClaims: ClaimBatcher;
  /** Voice rooms on the mediasoup worker pool (started by `start()`; may be unavailable). */
  voice: VoiceService;
}
