import { migrateUp, migrationStatus } from '../../src/db/migrator.js';
import { BaseCommand } from '../_base.js';
import { jsonFlag, withDatabase } from './_shared.js';

export default class MigrateUp extends BaseCommand {
  static override summary = 'Apply every pending database migration.';
  static override description = 'Safe to run repeatedly: nothing happens when the schema is current.';
  static override examples = ['<%= config.bin %> migrate up', '<%= config.bin %> migrate up --json'];
  static override flags = { json: jsonFlag };

  async run(): Promise<void> {
    const { flags } = await this.parse(MigrateUp);
    const config = this.loadConfig(flags.config);
    const { applied, status } = await withDatabase(config, async (db) => ({
      applied: await migrateUp(db),
      status: await migrationStatus(db),
    }));
    if (flags.json) {
      this.log(JSON.stringify({ applied, pending: status.pending }));
      return;
    }
    if (applied.length === 0) this.log('Nothing to apply: the schema is current.');
    else for (const name of applied) this.log(`applied  ${name}`);
  }
}
