/**
 * Boots the real server in-process on an ephemeral loopback port with a throwaway database and
 * keyring, capturing its log lines (tests assert that no secret is ever logged).
 */

import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll } from 'vitest';
import { createApp, type VoiceChatApp } from '../../src/app/create-app.js';
import { type Config, loadConfig } from '../../src/config/index.js';
import type { AppContext } from '../../src/context.js';
import { Keyring } from '../../src/crypto/keyring.js';
import type { Db, Dialect } from '../../src/db/knex.js';
import { createLogger } from '../../src/logger.js';
import { createTestDatabase, type TestDatabase } from './db.js';

export interface TestServer {
  url: string;
  wsUrl: string;
  port: number;
  app: VoiceChatApp;
  ctx: AppContext;
  config: Config;
  db: Db;
  database: TestDatabase;
  keyring: Keyring;
  /** Every log line written so far (raw JSON text). */
  logs: string[];
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Extra VOICECHAT_* settings. */
  env?: Record<string, string>;
  /** Reuse a database (e.g. two nodes sharing one); otherwise a fresh one is created and dropped. */
  database?: TestDatabase;
  /** The dialect of the fresh database (default: VOICECHAT_TEST_DB's). */
  dialect?: Dialect;
  keyring?: Keyring;
}

export async function startTestServer(opts: StartOptions = {}): Promise<TestServer> {
  const database = opts.database ?? (await createTestDatabase(opts.dialect ? { dialect: opts.dialect } : {}));
  const keyring = opts.keyring ?? Keyring.generate();
  const keyringFile = path.join(database.dir, `keys-${process.pid}-${Math.random().toString(36).slice(2)}.json`);
  keyring.save(keyringFile);
  const config = loadConfig({
    env: {
      VOICECHAT_DATA_DIR: database.dir,
      VOICECHAT_DATABASE_URL: database.databaseUrl,
      VOICECHAT_HOST: '127.0.0.1',
      VOICECHAT_PORT: '0',
      VOICECHAT_KEYRING: keyringFile,
      VOICECHAT_REGISTRATION: 'open',
      VOICECHAT_LOG_LEVEL: 'debug',
      // Voice tests turn it on (with VOICECHAT_RTC_PORT=0); the others need no mediasoup worker.
      VOICECHAT_VOICE: 'off',
      ...opts.env,
    },
  });
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logs.push(String(chunk));
      cb();
    },
  });
  const app = await createApp(config, { logger: createLogger(config.logLevel, sink), keyring });
  const { port } = await app.start();
  let stopped = false;
  return {
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/ws`,
    port,
    app,
    ctx: app.ctx,
    config,
    db: database.db,
    database,
    keyring,
    logs,
    async stop() {
      if (stopped) return;
      stopped = true;
      await app.stop();
      if (!opts.database) await database.drop();
    },
  };
}

/**
 * The suite fixture: a server started before the suite's tests (its `beforeAll` runs before any the
 * suite adds later, so a seeded guild can rely on it) and stopped after them. Use the returned object
 * like the server itself from inside hooks and tests. `env` may be a function, read when the server
 * starts (after the hooks registered before this call, e.g. one starting an SMTP sink).
 */
export function useTestServer(
  env: Record<string, string> | (() => Record<string, string>) = {},
  opts: Omit<StartOptions, 'env'> = {},
): TestServer {
  let server: TestServer | undefined;
  beforeAll(async () => {
    server = await startTestServer({ ...opts, env: typeof env === 'function' ? env() : env });
  });
  afterAll(async () => {
    await server?.stop();
  });
  return new Proxy({} as TestServer, {
    get(_target, prop) {
      if (!server) throw new Error('useTestServer: the server starts in beforeAll; use it inside hooks and tests');
      return server[prop as keyof TestServer];
    },
  });
}
