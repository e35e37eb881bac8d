/**
 * Composition root: wires config, database, keyring, transports and features into one server, and
 * shuts them down in order (stop accepting → close sockets → flush writers → drop subscriptions →
 * close the bus, Redis and the database). Every runtime object of an app is built here, so two apps
 * in one process share none.
 */
import type { Redis } from 'ioredis';
import { ChannelAccessCache } from '../access/cache.js';
import { createMailer } from '../auth/mailer.js';
import { SessionGuard } from '../auth/session-guard.js';
import type { Config } from '../config/index.js';
import type { AppContext } from '../context.js';
import { type Keyring, loadKeyring } from '../crypto/keyring.js';
import { DummyPassword } from '../crypto/passwords.js';
import { createDb, type Db, dbOptionsOf, dialectOf } from '../db/knex.js';
import { migrationStatus } from '../db/migrator.js';
import { ClaimBatcher } from '../e2ee/claim-batcher.js';
import { ConfigError } from '../errors.js';
import { type EventBus, LocalEventBus } from '../events/bus.js';
import { EventHub } from '../events/hub.js';
import { Gateway } from '../gateway/Gateway.js';
import { createHttpApp, type RouteModule } from '../http/app.js';
import { authRoutes } from '../http/routes/auth.js';
import { channelRoutes } from '../http/routes/channels.js';
import { e2eeRoutes } from '../http/routes/e2ee.js';
import { guildRoutes } from '../http/routes/guilds.js';
import { messageRoutes } from '../http/routes/messages.js';
import { uploadRoutes } from '../http/routes/uploads.js';
import { voiceRoutes } from '../http/routes/voice.js';
import { JOBS } from '../jobs/index.js';
import { JobScheduler } from '../jobs/scheduler.js';
import { NodeKeySync } from '../keys/node-sync.js';
import { createLogger, type Logger } from '../logger.js';
import { createMessageWriter } from '../messages/repo.js';
import { createMetrics } from '../metrics.js';
import { OutageLog } from '../net/outage-log.js';
import { listen } from '../net/uws.js';
import { RateLimits } from '../ratelimit/index.js';
import { sweepPartialUploads } from '../uploads/storage.js';
import { registerVoiceMetrics } from '../voice/metrics.js';
import { attachVoiceSignalling } from '../voice/signalling.js';
import { VoiceService } from '../voice/VoiceService.js';

export interface CreateAppOptions {
  logger?: Logger;
  keyring?: Keyring;
  /** A pool on the configured database (it stays open after stop()). */
  db?: Db;
}

export interface VoiceChatApp {
  ctx: AppContext;
  /** The raw bus (tests and benchmarks inject messages; features publish through `ctx.events`). */
  bus: EventBus;
  gateway: Gateway;
  /** Starts listening; resolves with the bound port (useful with port 0). */
  start(): Promise<{ port: number }>;
  /** Ordered, idempotent shutdown. */
  stop(): Promise<void>;
  /** SIGHUP: re-reads the keyring file and re-applies the key activation state; false if not possible. */
  reloadKeys(): Promise<boolean>;
}

const routeModules: RouteModule[] = [
  authRoutes,
  guildRoutes,
  channelRoutes,
  messageRoutes,
  uploadRoutes,
  voiceRoutes,
  e2eeRoutes,
];

/** Refuses to start when keys are missing/invalid or migrations are pending. */
export async function createApp(config: Config, opts: CreateAppOptions = {}): Promise<VoiceChatApp> {
  const logger = opts.logger ?? createLogger(config.logLevel);
  const keyring = opts.keyring ?? loadKeyring(config);
  const dbOptions = dbOptionsOf(config);
  const db = opts.db ?? createDb(dbOptions);
  const ownsDb = !opts.db;
  try {
    const status = await migrationStatus(db);
    if (status.pending.length > 0) {
      throw new ConfigError([
        `${status.pending.length} database migration(s) pending (${status.pending.join(', ')}); run \`voicechat migrate up\``,
      ]);
    }
  } catch (e) {
    if (ownsDb) await db.destroy();
    if (e instanceof ConfigError) throw e;
    throw new ConfigError([`database unreachable (${(e as Error).message.split('\n')[0]})`]);
  }

  // ioredis and the Redis bus are loaded only when REDIS_URL is set (one-node installs never need them).
  const redis: Redis | undefined = config.redisUrl
    ? new (await import('ioredis')).Redis(config.redisUrl, {
        lazyConnect: false,
        enableOfflineQueue: false,
        maxRetriesPerRequest: 1,
      })
    : undefined;
  // One line when Redis goes away and one when it is back, not one per request or reconnect attempt.
  const redisOutage = redis
    ? new OutageLog(
        logger,
        'redis (rate limits)',
        'login, registration and WebSocket upgrades are refused (429) until it is back',
      ).watch(redis)
    : undefined;
  // Wait (briefly) for the first connection, so the fail-closed limits do not refuse the first
  // requests of a healthy node; an unreachable Redis is logged and the limits fail closed.
  if (redis) {
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        redis.off('ready', done);
        redis.off('error', done);
        resolve();
      };
      const timer = setTimeout(done, 3000);
      redis.once('ready', done);
      redis.once('error', done);
    });
  }
  // With REDIS_URL every node delivers every event (its own at once, the others' through Redis).
  const bus: EventBus = config.redisUrl
    ? await (await import('../events/redis-bus.js')).RedisEventBus.connect(config.redisUrl, logger, {
        channel: `${config.redisPrefix}:bus`,
      })
    : new LocalEventBus(logger);
  const events = new EventHub(bus);
  const limits = new RateLimits({
    scale: config.rateLimitScale,
    windowScale: config.rateLimitWindowScale,
    prefix: config.redisPrefix,
    logger,
    ...(redis ? { redis } : {}),
    ...(redisOutage ? { outage: redisOutage } : {}),
  });
  const dummyPassword = new DummyPassword(config);
  dummyPassword.warmUp().catch((err) => logger.error({ err }, 'dummy password hash failed'));
  const ctx: AppContext = {
    config,
    db,
    dialect: dialectOf(db),
    keyring,
    logger,
    metrics: createMetrics(),
    events,
    limits,
    sessions: new SessionGuard({ db, keyring: () => ctx.keyring, events }),
    channelAccess: new ChannelAccessCache(db, events),
    messageWriter: createMessageWriter(db, dbOptions),
    dummyPassword,
    mailer: createMailer(config),
    keyClaims: new ClaimBatcher(db, dialectOf(db)),
    voice: VoiceService.create({ config, logger }),
  };
  registerVoiceMetrics(ctx.metrics.registry, ctx.voice);
  // voice_* events, leave audits and removal on access loss (before the gateway: nothing is missed).
  const voiceSignalling = attachVoiceSignalling(ctx);
  // Key activation state from the database (rotation), applied before anything is served.
  const keySync = await NodeKeySync.start({
    db,
    logger,
    heartbeatMs: config.nodeHeartbeatMs,
    base: keyring,
    apply: (k) => {
      ctx.keyring = k;
    },
    loadBase: () => loadKeyring(config),
    ...(config.redisUrl ? { redis: { url: config.redisUrl, prefix: config.redisPrefix } } : {}),
  });
  const http = createHttpApp(ctx, routeModules);
  // `/ws` on the same uWS app (and port) as the REST API; registered before listen.
  const gateway = Gateway.attach(ctx, http);

  let closeListener: (() => void) | undefined;
  let jobs: JobScheduler | undefined;
  let stopped: Promise<void> | undefined;

  return {
    ctx,
    bus,
    gateway,
    async start() {
      // Media first: the workers are running (or known to be unavailable) before clients arrive.
      const voice = await ctx.voice.start();
      if (voice.available) logger.info({ workers: voice.workers, rtc_port: config.rtcPort }, 'voice available');
      else if (config.voice === 'off') logger.info({ reason: voice.reason }, 'voice unavailable');
      else logger.warn({ reason: voice.reason }, 'voice unavailable: text chat only');
      const { port, close } = await listen(http, config.host, config.port);
      closeListener = close;
      // Partial files of uploads a previous run was killed in the middle of. On SQLite this server is
      // the only one on its data directory (serve's lock), so every `.part` is a leftover; Postgres
      // nodes may share the directory, so only the ones nobody has written to for a while go.
      await sweepPartialUploads(config.dataDir, Date.now(), ctx.dialect === 'sqlite' ? 0 : undefined).then(
        (n) => n > 0 && logger.info({ files: n }, 'removed partial uploads left by an earlier run'),
        (err: unknown) => logger.warn({ err }, 'could not sweep partial uploads'),
      );
      jobs = JobScheduler.start({ db, dialect: ctx.dialect, config, logger, metrics: ctx.metrics }, JOBS);
      logger.info({ port, host: config.host, dialect: ctx.dialect, tls: Boolean(config.tlsCert) }, 'listening');
      return { port };
    },
    async reloadKeys() {
      try {
        return await keySync.reload();
      } catch (err) {
        logger.error({ err }, 'keyring reload failed; keeping the current keys');
        return false;
      }
    },
    stop() {
      stopped ??= (async () => {
        closeListener?.();
        await jobs?.stop();
        gateway.close();
        // After the sockets (nobody can join any more), before the database.
        ctx.voice.close();
        await voiceSignalling.detach();
        await keySync.close();
        await ctx.messageWriter.close();
        ctx.channelAccess.close();
        ctx.sessions.close();
        await bus.close();
        ctx.mailer?.close();
        redis?.disconnect();
        if (ownsDb) await db.destroy();
        logger.info('stopped');
      })();
      return stopped;
    },
  };
}
