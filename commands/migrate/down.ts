import { confirm } from '@inquirer/prompts';
import { Flags } from '@oclif/core';
import { migrateDown } from '../../src/db/migrator.js';
import { BaseCommand, CliError, EXIT } from '../_base.js';
import { jsonFlag, withDatabase } from './_shared.js';

export default class MigrateDown extends BaseCommand {
  static override summary = 'Roll back the last batch of migrations (drops the tables and data they created).';
  static override description =
    'Rolling back the initial migration drops every table. Asks for confirmation on a terminal; --yes confirms in scripts.';
  static override examples = ['<%= config.bin %> migrate down', '<%= config.bin %> migrate down --yes --json'];
  static override flags = {
    json: jsonFlag,
    yes: Flags.boolean({ summary: 'Do not ask for confirmation.', default: false }),
    all: Flags.boolean({ summary: 'Roll back every batch, not just the last.', default: false }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(MigrateDown);
    const config = this.loadConfig(flags.config);
    if (!flags.yes) {
      if (!process.stdin.isTTY) throw new CliError('migrate down destroys data; pass --yes to confirm', EXIT.refused);
      const ok = await confirm({ message: 'Roll back migrations? Tables they created are dropped with their data.' });
      if (!ok) throw new CliError('cancelled', EXIT.refused);
    }
    const rolled = await withDatabase(config, (db) => migrateDown(db, flags.all));
    if (flags.json) {
      this.log(JSON.stringify({ rolled_back: rolled }));
      return;
    }
    if (rolled.length === 0) this.log('Nothing to roll back.');
    else for (const name of rolled) this.log(`rolled back  ${name}`);
  }
}
