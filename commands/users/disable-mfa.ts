import { Args, Flags } from '@oclif/core';
import { adminDisableMfa } from '../../src/auth/mfa.js';
import { BaseCommand } from '../_base.js';

export default class UsersDisableMfa extends BaseCommand {
  static override summary = 'Turn two-factor authentication off for a user who lost their authenticator.';
  static override examples = ['<%= config.bin %> users disable-mfa alice'];
  static override args = { username: Args.string({ required: true }) };
  static override flags = { json: Flags.boolean({ summary: 'Print JSON.', default: false }) };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(UsersDisableMfa);
    const config = this.loadConfig(flags.config);
    const { user, wasEnabled } = await this.withDatabase(config, (db) => adminDisableMfa(db, args.username));
    if (flags.json) this.log(JSON.stringify({ username: user.username, mfa_enabled: false, was_enabled: wasEnabled }));
    else
      this.log(
        wasEnabled
          ? `Two-factor authentication disabled for ${user.username}.`
          : `${user.username} had no two-factor authentication; nothing changed.`,
      );
  }
}
