import { migrationStatus } from '../../src/db/migrator.js';
import { BaseCommand } from '../_base.js';
import { jsonFlag, withDatabase } from './_shared.js';

export default class MigrateStatus extends BaseCommand {
  static override summary = 'List applied and pending database migrations.';
  static override description = '`serve` refuses to start while any migration is pending.';
  static override examples = ['<%= config.bin %> migrate status', '<%= config.bin %> migrate status --json'];
  static override flags = { json: jsonFlag };

  async run(): Promise<void> {
    const { flags } = await this.parse(MigrateStatus);
    const config = this.loadConfig(flags.config);
    const status = await withDatabase(config, migrationStatus);
    if (flags.json) {
      this.log(JSON.stringify({ dialect: config.dialect, completed: status.completed, pending: status.pending }));
      return;
    }
    for (const name of status.completed) this.log(`applied  ${name}`);
    for (const name of status.pending) this.log(`pending  ${name}`);
    this.log(
      status.pending.length === 0
        ? `Schema is current (${status.completed.length} applied, database: ${config.dialect}).`
        : `${status.pending.length} pending; run \`voicechat migrate up\`.`,
    );
  }
}
