import { Args, Flags } from '@oclif/core';
import { dialectOf } from '../../src/db/knex.js';
import { runJobNow } from '../../src/jobs/service.js';
import { createLogger } from '../../src/logger.js';
import { BaseCommand, CliError, EXIT } from '../_base.js';

export default class JobsRun extends BaseCommand {
  static override summary = 'Run one scheduled job now.';
  static override description =
    "Takes the job's lease like a scheduled run, so it never overlaps a run on a server node (then it exits 4 and says so). Prints what the job removed.";
  static override examples = [
    '<%= config.bin %> jobs run expired-sessions',
    '<%= config.bin %> jobs run audit-retention --json',
  ];
  static override args = {
    name: Args.string({ description: 'Job name (see `voicechat jobs list`).', required: true }),
  };
  static override flags = { json: Flags.boolean({ summary: 'Print JSON.', default: false }) };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(JobsRun);
    const config = this.loadConfig(flags.config);
    const outcome = await this.withDatabase(config, (db) =>
      runJobNow({ db, dialect: dialectOf(db), config, logger: createLogger('silent') }, args.name),
    );
    if (flags.json) this.log(JSON.stringify(outcome));
    else if (outcome.status === 'ok') {
      this.log(
        `${outcome.job}: ${
          Object.entries(outcome.result)
            .map(([k, v]) => `${k}=${v}`)
            .join(' ') || 'done'
        } (${outcome.duration_ms} ms)`,
      );
    }
    if (outcome.status === 'skipped') throw new CliError(`${outcome.job} is ${outcome.reason}`, EXIT.refused);
    if (outcome.status === 'failed') throw new CliError(`${outcome.job} failed: ${outcome.error}`);
  }
}
