import { Args, Flags } from '@oclif/core';
import { unlockUser } from '../../src/users/service.js';
import { BaseCommand } from '../_base.js';

export default class UsersUnlock extends BaseCommand {
  static override summary = 'Lift a failed-login lockout and reset the failure counter.';
  static override examples = ['<%= config.bin %> users unlock alice'];
  static override args = { username: Args.string({ required: true }) };
  static override flags = { json: Flags.boolean({ summary: 'Print JSON.', default: false }) };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(UsersUnlock);
    const config = this.loadConfig(flags.config);
    const user = await this.withDatabase(config, (db) => unlockUser(db, args.username));
    if (flags.json) this.log(JSON.stringify({ username: user.username, unlocked: true }));
    else this.log(`Unlocked ${user.username}.`);
  }
}
