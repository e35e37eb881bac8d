import { existsSync } from 'node:fs';
import path from 'node:path';
import { Args, Flags } from '@oclif/core';
import { ArchiveError, RestoreRefused, restore } from '../src/backup/service.js';
import { BaseCommand, CliError, EXIT } from './_base.js';
import { progressBar } from './_progress.js';

export default class Restore extends BaseCommand {
  static override summary = 'Restore a backup archive into an empty database and data directory (either dialect).';
  static override description =
    `Verifies every checksum first (a corrupted or truncated archive is refused and nothing is written), refuses a target database that holds data or that a running server uses (--force allows the latter for an empty target), loads the rows at the backup's schema version, applies newer migrations, then writes the uploads, the config (unless one exists) and the keyring when the archive holds one.

Target: --database-url (Postgres or sqlite:// URL) and/or --data-dir (uploads, config; SQLite database there unless --database-url). Without either, the configured database and data directory.

Moving from SQLite to Postgres: stop the server, \`voicechat backup FILE --include-keys\`, then \`voicechat restore FILE --database-url postgres://…\` and point the config at Postgres.`;
  static override examples = [
    '<%= config.bin %> <%= command.id %> backup.vcbak --data-dir /var/lib/voicechat',
    '<%= config.bin %> <%= command.id %> backup.vcbak --database-url postgres://voicechat@127.0.0.1/voicechat --data-dir /var/lib/voicechat',
  ];
  static override args = {
    file: Args.string({ description: 'Archive written by `voicechat backup`.', required: true }),
  };
  static override flags = {
    'data-dir': Flags.string({
      summary: 'Target data directory (uploads, config; SQLite database unless --database-url).',
    }),
    'database-url': Flags.string({ summary: 'Target database URL (postgres://… or sqlite://…).' }),
    force: Flags.boolean({ summary: 'Restore even though a running server uses the (empty) target.', default: false }),
    json: Flags.boolean({ summary: 'Print JSON.', default: false }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Restore);
    const overrides = {
      dataDir: flags['data-dir'] ? path.resolve(flags['data-dir']) : undefined,
      databaseUrl: flags['database-url'],
    };
    const config = this.loadConfig(flags.config, overrides);
    const sqliteFile =
      flags['data-dir'] && !flags['database-url'] ? path.join(config.dataDir, 'voicechat.db') : config.sqliteFile;
    if (!existsSync(args.file)) throw new CliError(`cannot read ${args.file}: no such file`, EXIT.notFound);
    const bar = progressBar(flags.json);
    let result: Awaited<ReturnType<typeof restore>>;
    try {
      result = await restore(
        path.resolve(args.file),
        {
          dialect: config.dialect,
          databaseUrl: config.databaseUrl ?? '',
          sqliteFile,
          dataDir: config.dataDir,
          configPath: flags.config
            ? path.resolve(flags.config)
            : flags['data-dir']
              ? path.join(config.dataDir, 'voicechat.env')
              : (config.configPath ?? path.join(config.dataDir, 'voicechat.env')),
        },
        { force: flags.force, onProgress: (label, done, total) => bar?.update(label, done, total) },
      );
    } catch (e) {
      if (e instanceof RestoreRefused) throw new CliError(e.message, EXIT.refused);
      if (e instanceof ArchiveError) throw new CliError(e.message);
      if ((e as NodeJS.ErrnoException).code === 'ENOENT')
        throw new CliError(`cannot read ${args.file}: no such file`, EXIT.notFound);
      throw e;
    } finally {
      bar?.stop();
    }
    if (flags.json) {
      this.log(JSON.stringify(result, null, 2));
    } else {
      const rows = Object.values(result.tables).reduce((a, b) => a + b, 0);
      this.log(
        `Restored ${rows} rows (${result.from_dialect} → ${result.to_dialect}, schema ${result.schema_version}), ${result.files} upload(s).`,
      );
      if (result.migrations_applied.length > 0)
        this.log(`Applied ${result.migrations_applied.length} newer migration(s).`);
      this.log(`Config: ${result.config.path}${result.config.written ? ' (written)' : ' (kept)'}`);
      if (result.keyring)
        this.log(`Keyring: ${result.keyring.path}${result.keyring.written ? ' (written, mode 0600)' : ' (kept)'}`);
    }
    for (const n of result.notes) this.logToStderr(`Note: ${n}`);
  }
}
