import path from 'node:path';
import { Flags } from '@oclif/core';
import { createApp } from '../src/app/create-app.js';
import { initialise, isFirstRun } from '../src/setup/initialise.js';
import { acquireInstanceLock } from '../src/setup/instance-lock.js';
import { BaseCommand } from './_base.js';

const SHUTDOWN_GRACE_MS = 10_000;

export default class Serve extends BaseCommand {
  static override summary = 'Run the server (HTTP API, WebSocket gateway and voice on one port).';
  static override description =
    `Loads the configuration (defaults < config file < VOICECHAT_* environment < flags), refuses to start with a one-line reason when migrations are pending or keys are missing or invalid, and serves until SIGTERM or SIGINT, then stops listening, closes connections and the database, and exits 0.

First run: with no config anywhere (no --config, no VOICECHAT_CONFIG, no voicechat.env in the data directory, ./data or /etc/voicechat), it initialises ./data unattended (SQLite, fresh keyring, migrations) and prints how to create the first admin.`;
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --config /etc/voicechat/voicechat.env',
    '<%= config.bin %> <%= command.id %> --port 9000 --host 127.0.0.1',
  ];
  static override flags = {
    port: Flags.integer({
      summary: 'Port to listen on (0 = any free port); overrides VOICECHAT_PORT.',
      min: 0,
      max: 65535,
    }),
    host: Flags.string({ summary: 'Address to bind; overrides VOICECHAT_HOST.' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Serve);
    const overrides = { port: flags.port, host: flags.host };
    if (isFirstRun({ configPath: flags.config })) {
      // Only what the environment asks for is written; defaults stay defaults.
      const effective = this.loadConfig(undefined, overrides);
      const result = await initialise({ dataDir: effective.dataDir, databaseUrl: effective.databaseUrl });
      this.logToStderr(
        [
          `First run: initialised ${result.dataDir} (config ${result.configPath}, keyring ${result.keyringFile}, ${result.dialect} database).`,
          'Back up the keyring: without it, MFA secrets and encrypted data cannot be recovered.',
          'Create the first admin with:  npx voicechat users create admin --admin',
        ].join('\n'),
      );
    }
    const config = this.loadConfig(flags.config, overrides);
    // One server per SQLite database (see src/setup/instance-lock.ts); Postgres nodes may share a box.
    const lock =
      config.dialect === 'sqlite' ? acquireInstanceLock([config.dataDir, path.dirname(config.sqliteFile)]) : undefined;
    const app = await createApp(config);
    let port: number;
    try {
      ({ port } = await app.start());
    } catch (e) {
      // Not listening (port taken): close what createApp opened, so the process can exit at once.
      await app.stop().catch(() => {});
      throw e;
    }
    const logger = app.ctx.logger;

    // The handlers go in before "voicechat started" is written: whoever waits for that line may
    // signal at once, and a signal with no handler would kill the process without a clean stop.
    const stopped = new Promise<void>((resolve) => {
      let stopping = false;
      const onSignal = (signal: NodeJS.Signals) => {
        if (stopping) return;
        stopping = true;
        logger.info({ signal }, 'shutting down');
        // A hung close must not keep a stopped service alive forever.
        const timer = setTimeout(() => {
          logger.error('shutdown took too long; exiting');
          process.exit(1);
        }, SHUTDOWN_GRACE_MS);
        timer.unref();
        app.stop().then(
          () => resolve(),
          (err: unknown) => {
            logger.error({ err }, 'error during shutdown');
            resolve();
          },
        );
      };
      // systemctl reload: re-read the keyring where this process can read the file (plain installs,
      // VOICECHAT_KEYRING); under systemd the credential copy is what the service got at start.
      process.on('SIGHUP', () => {
        void app.reloadKeys().then((ok) => logger.info({ reloaded: ok }, 'SIGHUP: keyring reloaded'));
      });
      process.once('SIGTERM', onSignal);
      process.once('SIGINT', onSignal);
    });
    logger.info(
      { port, startup_ms: Math.round(process.uptime() * 1000), rss_bytes: process.memoryUsage().rss },
      'voicechat started',
    );
    await stopped;
    lock?.release();
    logger.flush();
    // Idle keep-alive sockets would hold the uWS loop open for a while; everything is closed, so exit now.
    this.exit(0);
  }
}
