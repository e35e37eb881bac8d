import { readFileSync } from 'node:fs';
import { Args, Flags } from '@oclif/core';
import { randomToken } from '../../src/crypto/random.js';
import { adminCreateUser } from '../../src/users/service.js';
import { BaseCommand, CliError, EXIT } from '../_base.js';

export default class UsersCreate extends BaseCommand {
  static override summary = 'Create a user account.';
  static override description =
    'The password is read from --password-file (first line); without it a random password is generated and printed once.';
  static override examples = [
    '<%= config.bin %> users create alice --password-file /run/secrets/alice',
    '<%= config.bin %> users create bob --admin --email bob@example.org --json',
  ];
  static override args = { username: Args.string({ required: true, description: 'Username (a-z, 0-9, _; 3-32).' }) };
  static override flags = {
    'password-file': Flags.string({ summary: 'File holding the password.' }),
    email: Flags.string({ summary: 'Email address.' }),
    'display-name': Flags.string({ summary: 'Display name.' }),
    admin: Flags.boolean({ summary: 'Make the user a server admin.', default: false }),
    json: Flags.boolean({ summary: 'Print JSON.', default: false }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(UsersCreate);
    const config = this.loadConfig(flags.config);
    let password: string;
    let generated = false;
    if (flags['password-file']) {
      try {
        password = (readFileSync(flags['password-file'], 'utf8').split(/\r?\n/)[0] ?? '').trimEnd();
      } catch (e) {
        throw new CliError(`cannot read ${flags['password-file']} (${(e as NodeJS.ErrnoException).code})`, EXIT.usage);
      }
    } else {
      password = randomToken(18);
      generated = true;
    }
    const user = await this.withDatabase(config, (db) =>
      adminCreateUser(db, config, {
        username: args.username,
        password,
        email: flags.email ?? null,
        displayName: flags['display-name'] ?? null,
        isAdmin: flags.admin,
      }),
    );
    if (flags.json) {
      this.log(
        JSON.stringify(
          {
            id: user.id,
            username: user.username,
            is_admin: Boolean(user.is_admin),
            ...(generated ? { password } : {}),
          },
          null,
          2,
        ),
      );
      return;
    }
    this.log(`Created ${user.is_admin ? 'admin ' : ''}user ${user.username} (${user.id}).`);
    if (generated) this.log(`Generated password (shown once): ${password}`);
  }
}
