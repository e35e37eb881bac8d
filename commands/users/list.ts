import { Flags } from '@oclif/core';
import { adminListUsers } from '../../src/users/service.js';
import { BaseCommand } from '../_base.js';

export default class UsersList extends BaseCommand {
  static override summary = 'List user accounts.';
  static override examples = ['<%= config.bin %> users list', '<%= config.bin %> users list --json'];
  static override flags = { json: Flags.boolean({ summary: 'Print JSON.', default: false }) };

  async run(): Promise<void> {
    const { flags } = await this.parse(UsersList);
    const config = this.loadConfig(flags.config);
    const users = await this.withDatabase(config, (db) => adminListUsers(db));
    if (flags.json) {
      this.log(JSON.stringify(users, null, 2));
      return;
    }
    if (users.length === 0) {
      this.log('No users.');
      return;
    }
    const rows = users.map((u) => [
      u.username,
      u.is_admin ? 'admin' : '',
      u.mfa_enabled ? 'mfa' : '',
      u.locked_until ? `locked until ${u.locked_until}` : '',
      u.created_at ?? '',
    ]);
    const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => (r[i] as string).length)));
    for (const r of rows) this.log(r.map((c, i) => (i < 4 ? c.padEnd(widths[i] as number) : c)).join('  '));
  }
}
