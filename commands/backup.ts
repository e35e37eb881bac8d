import { Args, Flags } from '@oclif/core';
import { backup, RestoreRefused } from '../src/backup/service.js';
import { BaseCommand, CliError, EXIT } from './_base.js';
import { progressBar } from './_progress.js';

export const NO_KEYS_WARNING =
  'WARNING: this backup holds no keys. Without the keyring (keys.json) it can NOT decrypt MFA secrets or Megolm data: back the keyring up separately, or use --include-keys.';

export default class Backup extends BaseCommand {
  static override summary = 'Write a portable backup archive of the database, uploads and config (taken online).';
  static override description =
    `One archive for both databases: a consistent snapshot (one read transaction) of every table, written as rows with a manifest of schema version, row counts and checksums, plus the uploads and the config file. The server keeps running.

The keyring is included only with --include-keys (then guard the archive like the keyring itself). Without its keys a backup cannot decrypt MFA secrets or Megolm data.

FILE may be a directory: the archive is then named voicechat-<UTC timestamp>.vcbak inside it, and --keep N deletes all but the N newest such archives there (the nightly timer uses this).`;
  static override examples = [
    '<%= config.bin %> <%= command.id %> /var/backups/voicechat/today.vcbak',
    '<%= config.bin %> <%= command.id %> /root/vc-with-keys.vcbak --include-keys',
    '<%= config.bin %> <%= command.id %> /var/lib/voicechat/backups --keep 14',
  ];
  static override args = { file: Args.string({ description: 'Archive to write, or a directory.', required: true }) };
  static override flags = {
    'include-keys': Flags.boolean({ summary: 'Also store the keyring (keys.json) in the archive.', default: false }),
    keep: Flags.integer({ summary: 'With a directory: keep only the N newest archives.', min: 1 }),
    json: Flags.boolean({ summary: 'Print JSON.', default: false }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Backup);
    const config = this.loadConfig(flags.config);
    const bar = progressBar(flags.json);
    const result = await this.withDatabase(config, async (db) => {
      try {
        return await backup(config, db, args.file, {
          includeKeys: flags['include-keys'],
          keep: flags.keep,
          onProgress: (label, done, total) => bar?.update(label, done, total),
        });
      } catch (e) {
        if (e instanceof RestoreRefused) throw new CliError(e.message, EXIT.refused);
        if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'EACCES') {
          throw new CliError(`cannot write or read a file: ${(e as Error).message}`);
        }
        throw e;
      } finally {
        bar?.stop();
      }
    });
    if (!result.includes_keys) this.logToStderr(NO_KEYS_WARNING);
    if (flags.json) {
      this.log(JSON.stringify(result, null, 2));
      return;
    }
    const rows = Object.values(result.tables).reduce((a, b) => a + b, 0);
    this.log(
      `Wrote ${result.file}: ${rows} rows in ${Object.keys(result.tables).length} tables, ${result.files} upload(s), ${(result.bytes / 1048576).toFixed(1)} MiB, schema ${result.schema_version}${result.includes_keys ? ', keyring included' : ''}.`,
    );
    if (result.pruned.length > 0) this.log(`Removed old backups: ${result.pruned.join(', ')}`);
  }
}
