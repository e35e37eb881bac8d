/**
 * Every setting the server understands: its environment/config-file name, default, and how it is
 * parsed. The names are the contract of DESIGN.md §4; nothing else in the code knows them.
 */
import { z } from 'zod';

const HEX64 = /^[0-9a-fA-F]{64}$/;

const int = (min: number, max: number) =>
  z.coerce
    .number({ error: 'must be a number' })
    .int('must be a whole number')
    .min(min, `must be at least ${min}`)
    .max(max, `must be at most ${max}`);

const list = z.string().transform((s) =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean),
);

const optionalString = z
  .string()
  .optional()
  .transform((s) => (s === undefined || s.trim() === '' ? undefined : s.trim()));

const hexKey = z
  .string()
  .optional()
  .transform((s) => (s === undefined || s === '' ? undefined : s))
  .refine((s) => s === undefined || HEX64.test(s), 'must be exactly 64 hex characters (32 bytes)');

const url = (protocols: string[]) =>
  optionalString.refine(
    (s) => {
      if (s === undefined) return true;
      try {
        return protocols.includes(new URL(s).protocol);
      } catch {
        return false;
      }
    },
    `must be a URL (${protocols.join(' or ')})`,
  );

/** Setting key → [variable name, parser, default (raw string) or undefined, secret?] */
export const SETTINGS = {
  dataDir: { env: 'VOICECHAT_DATA_DIR', schema: z.string().min(1), default: './data' },
  databaseUrl: {
    env: 'VOICECHAT_DATABASE_URL',
    schema: url(['postgres:', 'postgresql:', 'sqlite:', 'file:']),
    default: '',
    secret: true,
  },
  host: { env: 'VOICECHAT_HOST', schema: z.string().min(1), default: '0.0.0.0' },
  port: { env: 'VOICECHAT_PORT', schema: int(0, 65535), default: '8080' },
  publicUrl: { env: 'VOICECHAT_PUBLIC_URL', schema: url(['http:', 'https:']), default: '' },
  tlsCert: { env: 'VOICECHAT_TLS_CERT', schema: optionalString, default: '' },
  tlsKey: { env: 'VOICECHAT_TLS_KEY', schema: optionalString, default: '' },
  allowedOrigins: { env: 'VOICECHAT_ALLOWED_ORIGINS', schema: list, default: '' },
  registration: { env: 'VOICECHAT_REGISTRATION', schema: z.enum(['open', 'invite', 'closed']), default: 'invite' },
  /** Voice on or off; off (or no worker) = text chat only, voice_join answers VOICE_UNAVAILABLE. */
  voice: { env: 'VOICECHAT_VOICE', schema: z.enum(['on', 'off']), default: 'on' },
  /** First media port (UDP+TCP); worker i listens on port + i. 0 = any free port (tests). */
  rtcPort: { env: 'VOICECHAT_RTC_PORT', schema: int(0, 65535), default: '40000' },
  /** Address the media sockets bind to. */
  rtcListenIp: { env: 'VOICECHAT_RTC_LISTEN_IP', schema: z.string().min(1), default: '0.0.0.0' },
  rtcAnnouncedIp: { env: 'VOICECHAT_RTC_ANNOUNCED_IP', schema: optionalString, default: '' },
  /** mediasoup workers (one per core carries ~500+ audio consumers each); 0 = one per core. */
  rtcWorkers: { env: 'VOICECHAT_RTC_WORKERS', schema: int(0, 64), default: '0' },
  /** Video producers besides audio (off: audio only). */
  voiceVideo: { env: 'VOICECHAT_VOICE_VIDEO', schema: z.enum(['on', 'off']), default: 'off' },
  stunUrls: { env: 'VOICECHAT_STUN_URLS', schema: list, default: '' },
  turnUrls: { env: 'VOICECHAT_TURN_URLS', schema: list, default: '' },
  turnSecret: { env: 'VOICECHAT_TURN_SECRET', schema: optionalString, default: '', secret: true },
  /** Lifetime of the TURN credentials handed out by GET /api/voice/ice-servers, in seconds. */
  turnCredentialTtlSeconds: { env: 'VOICECHAT_TURN_TTL', schema: int(60, 604800), default: '86400' },
  redisUrl: { env: 'REDIS_URL', schema: url(['redis:', 'rediss:']), default: '', secret: true },
  /** Prefix of every Redis key, so several deployments (or test servers) can share one Redis. */
  redisPrefix: {
    env: 'VOICECHAT_REDIS_PREFIX',
    schema: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1-64 of [A-Za-z0-9_.-]'),
    default: 'vc',
  },
  /** How long a SQLite write waits for another connection's lock before answering 503 (SQLite only). */
  sqliteBusyTimeoutMs: { env: 'VOICECHAT_SQLITE_BUSY_TIMEOUT_MS', schema: int(50, 60000), default: '5000' },
  uploadMaxBytes: { env: 'VOICECHAT_UPLOAD_MAX_BYTES', schema: int(1, 104857600), default: '52428800' },
  /** Per user: the bytes of all their stored attachments (unsent uploads included); 1 GiB. */
  uploadQuotaBytes: {
    env: 'VOICECHAT_UPLOAD_QUOTA_BYTES',
    schema: int(1, Number.MAX_SAFE_INTEGER),
    default: '1073741824',
  },
  logLevel: {
    env: 'VOICECHAT_LOG_LEVEL',
    schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    default: 'info',
  },
  trustedProxies: { env: 'VOICECHAT_TRUSTED_PROXIES', schema: list, default: '' },
  rateLimitScale: {
    env: 'VOICECHAT_RATE_LIMIT_SCALE',
    schema: z.coerce.number({ error: 'must be a number' }).positive('must be greater than 0').max(1e6),
    default: '1',
  },
  /** Multiplies every rate-limit and lockout window (tests shrink it; never switches a limit off). */
  rateLimitWindowScale: {
    env: 'VOICECHAT_RATE_LIMIT_WINDOW_SCALE',
    schema: z.coerce.number({ error: 'must be a number' }).positive('must be greater than 0').max(1000),
    default: '1',
  },
  /**
   * Gateway heartbeat interval sent in `ready`; a socket silent for two intervals is closed. At most
   * 478 s: the idle timeout (two intervals + one 4 s uWS tick) must stay within uWS's 960 s.
   */
  gatewayHeartbeatMs: { env: 'VOICECHAT_GATEWAY_HEARTBEAT_MS', schema: int(4000, 478000), default: '30000' },
  /** Audit rows older than this are pruned by the audit-retention job (a checkpoint keeps --verify passing). */
  auditRetentionDays: { env: 'VOICECHAT_AUDIT_RETENTION_DAYS', schema: int(1, 36500), default: '365' },
  /** How often a node records itself in server_nodes and re-reads the key activation state. */
  nodeHeartbeatMs: { env: 'VOICECHAT_NODE_HEARTBEAT_MS', schema: int(100, 60000), default: '5000' },
  /** The built browser client served at `/`; empty = `dist/web` of this installation. */
  webDir: { env: 'VOICECHAT_WEB_DIR', schema: optionalString, default: '' },
  metricsToken: { env: 'VOICECHAT_METRICS_TOKEN', schema: optionalString, default: '', secret: true },
  keyringPath: { env: 'VOICECHAT_KEYRING', schema: optionalString, default: '' },
  smtpUrl: { env: 'VOICECHAT_SMTP_URL', schema: url(['smtp:', 'smtps:']), default: '', secret: true },
  smtpFrom: { env: 'VOICECHAT_SMTP_FROM', schema: optionalString, default: '' },
  argon2MemoryKib: { env: 'VOICECHAT_ARGON2_MEMORY_KIB', schema: int(19456, 4194304), default: '19456' },
  argon2TimeCost: { env: 'VOICECHAT_ARGON2_TIME_COST', schema: int(2, 100), default: '2' },
  argon2Parallelism: { env: 'VOICECHAT_ARGON2_PARALLELISM', schema: int(1, 64), default: '1' },
  accessTokenTtlSeconds: { env: 'VOICECHAT_ACCESS_TOKEN_TTL', schema: int(5, 86400), default: '900' },
  refreshTokenTtlSeconds: { env: 'VOICECHAT_REFRESH_TOKEN_TTL', schema: int(60, 31536000), default: '2592000' },
  jwtSecret: { env: 'JWT_SECRET', schema: hexKey, default: '', secret: true },
  mfaEncryptionKey: { env: 'MFA_ENCRYPTION_KEY', schema: hexKey, default: '', secret: true },
  megolmEncryptionKey: { env: 'MEGOLM_ENCRYPTION_KEY', schema: hexKey, default: '', secret: true },
} as const;

export type SettingKey = keyof typeof SETTINGS;

type Out<K extends SettingKey> = z.output<(typeof SETTINGS)[K]['schema']>;

export type Config = { [K in SettingKey]: Out<K> } & {
  /** The config file that was read, if any. */
  configPath: string | undefined;
  /** Resolved absolute path of the keyring. */
  keyringFile: string;
  /** 'sqlite' unless databaseUrl is a postgres URL. */
  dialect: 'sqlite' | 'pg';
  /** Absolute SQLite file path (sqlite dialect only). */
  sqliteFile: string;
};

export const SECRET_ENV_NAMES: string[] = Object.values(SETTINGS)
  .filter((s) => 'secret' in s && s.secret)
  .map((s) => s.env);
