import { Args, Flags } from '@oclif/core';
import { setAdmin } from '../../src/users/service.js';
import { BaseCommand } from '../_base.js';

export default class UsersSetAdmin extends BaseCommand {
  static override summary = 'Grant (or with --revoke, take away) server admin rights.';
  static override examples = [
    '<%= config.bin %> users set-admin alice',
    '<%= config.bin %> users set-admin alice --revoke',
  ];
  static override args = { username: Args.string({ required: true }) };
  static override flags = {
    revoke: Flags.boolean({ summary: 'Remove admin rights instead.', default: false }),
    json: Flags.boolean({ summary: 'Print JSON.', default: false }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(UsersSetAdmin);
    const config = this.loadConfig(flags.config);
    const user = await this.withDatabase(config, (db) => setAdmin(db, args.username, !flags.revoke));
    if (flags.json) this.log(JSON.stringify({ username: user.username, is_admin: !flags.revoke }));
    else this.log(flags.revoke ? `${user.username} is no longer an admin.` : `${user.username} is now an admin.`);
  }
}
