import { Flags } from '@oclif/core';
import { listJobs } from '../../src/jobs/service.js';
import { BaseCommand } from '../_base.js';

export default class JobsList extends BaseCommand {
  static override summary = 'List the scheduled jobs with their schedule, last run and result.';
  static override description =
    '`serve` runs each job on its schedule (one node at a time); `voicechat jobs run NAME` runs one now.';
  static override examples = ['<%= config.bin %> jobs list', '<%= config.bin %> jobs list --json'];
  static override flags = { json: Flags.boolean({ summary: 'Print JSON.', default: false }) };

  async run(): Promise<void> {
    const { flags } = await this.parse(JobsList);
    const config = this.loadConfig(flags.config);
    const jobs = await this.withDatabase(config, (db) => listJobs(db));
    if (flags.json) {
      this.log(JSON.stringify(jobs, null, 2));
      return;
    }
    const rows = jobs.map((j) => [
      j.name,
      j.schedule,
      j.running ? 'running' : (j.last_status ?? 'never run'),
      j.last_finished_at ?? j.last_started_at ?? '-',
      j.last_error ??
        (j.last_result
          ? Object.entries(j.last_result)
              .map(([k, v]) => `${k}=${v}`)
              .join(' ')
          : '-'),
    ]);
    const head = ['JOB', 'SCHEDULE', 'LAST', 'AT', 'RESULT'];
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
    for (const r of [head, ...rows]) this.log(r.map((c, i) => (i < 4 ? c.padEnd(widths[i] as number) : c)).join('  '));
  }
}
